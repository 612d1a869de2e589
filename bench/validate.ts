// fhirguard's resource validator against the `fhir` package's Fhir.validate, both in one run
// on the same resources: per-resource time for a Patient and an Observation (the R4 spec
// examples, and Synthea's, which are what a hospital sends) and the whole 947-example corpus.
// Rounds alternate between the two so that machine load hits both alike; the median round
// counts. Target: fhirguard ≤ 0.5× the fhir package's time, with all of its checks on
// (invariants, bindings, references, narrative...). Also prints start-up costs.
// Run: npx tsc -p tsconfig.json && npm run bench:validate

import * as fs from 'node:fs';
import * as path from 'node:path';
import { FhirValidator } from '../src/fhir/validate/validator';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- the fhir package ships no types
const { Fhir } = require('fhir') as { Fhir: new () => { validate(resource: unknown, options?: unknown): { valid: boolean } } };

const CORPUS = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus');
const EXAMPLES = path.join(CORPUS, 'r4-examples', 'json');
const SYNTHEA = path.join(CORPUS, 'synthea');

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** ns per call of `fn(resource)`, over at least `minMs`. */
function perCall(fn: () => void, minMs: number): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(minMs) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < limit) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / n;
}

function main(): void {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 9);

  let t = process.hrtime.bigint();
  const ours = new FhirValidator();
  const oursInit = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  const theirs = new Fhir();
  const theirsInit = Number(process.hrtime.bigint() - t) / 1e6;

  const files = fs
    .readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const corpus = files.map((f) => readJson(path.join(EXAMPLES, f)));
  const bundle = readJson(
    path.join(
      SYNTHEA,
      fs.readdirSync(SYNTHEA).find((f) => f.endsWith('.json') && f !== 'index.json')!,
    ),
  );
  const entries = (bundle.entry as { resource: Record<string, unknown> }[]).map((e) => e.resource);

  // Cold: the first validation of every example compiles each type's tables on first use.
  t = process.hrtime.bigint();
  for (const r of corpus) ours.validateResource(r);
  const oursCold = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  for (const r of corpus) theirs.validate(r);
  const theirsCold = Number(process.hrtime.bigint() - t) / 1e6;

  const single: [string, Record<string, unknown>][] = [
    ['Patient (spec patient-example)', readJson(path.join(EXAMPLES, 'patient-example.json'))],
    ['Observation (spec observation-example)', readJson(path.join(EXAMPLES, 'observation-example.json'))],
    ['Patient (Synthea)', entries.find((r) => r.resourceType === 'Patient')!],
    ['Observation (Synthea)', entries.find((r) => r.resourceType === 'Observation')!],
  ];

  // Sanity: both sides accept what they are timed on (fhirguard: no error at all).
  for (const [name, r] of single) {
    if (ours.validateResource(r).some((i) => i.severity === 'error')) throw new Error(`fhirguard rejects ${name}`);
  }

  const rows: { name: string; ours: number; theirs: number; unit: string }[] = [];
  for (const [name, r] of single) {
    const o: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < rounds; i++) {
      o.push(perCall(() => ours.validateResource(r), 150));
      f.push(perCall(() => theirs.validate(r), 150));
    }
    rows.push({ name, ours: median(o) / 1000, theirs: median(f) / 1000, unit: 'µs' });
  }
  const o: number[] = [];
  const f: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let s = process.hrtime.bigint();
    for (const r of corpus) ours.validateResource(r);
    o.push(Number(process.hrtime.bigint() - s) / 1e6);
    s = process.hrtime.bigint();
    for (const r of corpus) theirs.validate(r);
    f.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  rows.push({ name: `all ${corpus.length} R4 examples`, ours: median(o), theirs: median(f), unit: 'ms' });
  const bo: number[] = [];
  const bf: number[] = [];
  for (let i = 0; i < rounds; i++) {
    let s = process.hrtime.bigint();
    ours.validateResource(bundle);
    bo.push(Number(process.hrtime.bigint() - s) / 1e6);
    s = process.hrtime.bigint();
    theirs.validate(bundle);
    bf.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  rows.push({ name: `Synthea transaction (${entries.length} entries)`, ours: median(bo), theirs: median(bf), unit: 'ms' });

  const width = Math.max(...rows.map((r) => r.name.length)) + 2;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the fhir package ships no types
  console.log(`fhirguard validator vs fhir ${require('fhir/package.json').version} Fhir.validate (median of ${rounds} alternating rounds)\n`);
  console.log(`${'resource'.padEnd(width)}${'fhirguard'.padStart(12)}${'fhir'.padStart(12)}${'ratio'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(width)}${`${r.ours.toFixed(1)} ${r.unit}`.padStart(12)}${`${r.theirs.toFixed(1)} ${r.unit}`.padStart(12)}${(r.ours / r.theirs).toFixed(2).padStart(7)}×`);
  }
  const worst = Math.max(...rows.map((r) => r.ours / r.theirs));
  console.log(`\ntarget ≤ 0.50×: ${worst <= 0.5 ? 'met' : 'NOT met'} (worst ratio ${worst.toFixed(2)}×)`);
  console.log(
    `start-up: fhirguard ${oursInit.toFixed(0)} ms to load + ${oursCold.toFixed(0)} ms for a first (cold) pass over the corpus; ` + `fhir ${theirsInit.toFixed(0)} ms + ${theirsCold.toFixed(0)} ms`,
  );
}

main();
