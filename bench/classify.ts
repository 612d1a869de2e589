// Time per classification for a handful of request shapes: the classify stage's own cost,
// measured in-process (no HTTP). Prints ns per call; there is no target, the figures feed
// the stage metric's expectations. Run: npx tsc -p tsconfig.json && node dist/bench/classify.js

import * as fs from 'node:fs';
import * as path from 'node:path';
import { classify, type RequestView } from '../src/fhir/classify';
import { parseJsonBody } from '../src/fhir/body';
import { loadSearchParameters } from '../src/fhir/search-parameters';

function view(method: string, url: string, extra: Partial<RequestView> = {}): RequestView {
  const q = url.indexOf('?');
  return {
    method,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers: { host: '127.0.0.1:8080', accept: 'application/fhir+json' },
    ...extra,
  };
}

/** The first Synthea transaction of the shared corpus, parsed. */
function synthea(): unknown {
  const dir = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus', 'synthea');
  const file = fs.readdirSync(dir).find((n) => n.endsWith('.json') && n !== 'index.json');
  if (file === undefined) throw new Error(`no Synthea bundle in ${dir}`);
  return parseJsonBody(fs.readFileSync(path.join(dir, file)), { maxDepth: 64 });
}

const shapes: [string, RequestView][] = [
  ['read          GET Patient/123', view('GET', '/Patient/123')],
  ['vread         GET Patient/123/_history/2', view('GET', '/Patient/123/_history/2')],
  ['search        GET Observation?subject=Patient/1&code=...&date=ge...', view('GET', '/Observation?subject=Patient/123&code=http://loinc.org|8867-4&date=ge2020-01-01&_count=50')],
  ['compartment   GET Patient/123/Observation?code=...', view('GET', '/Patient/123/Observation?code=8867-4')],
  ['create        POST Patient (If-None-Exist)', view('POST', '/Patient', { headers: { 'if-none-exist': 'identifier=http://acme.org|42' } })],
  ['operation     GET Patient/123/$everything', view('GET', '/Patient/123/$everything')],
  ['refused       GET Patient/..%2FObservation', view('GET', '/Patient/..%2FObservation')],
];

function measure(req: RequestView, minMs: number): number {
  const once = (): void => {
    try {
      classify(req);
    } catch {
      /* refusals are measured too */
    }
  };
  for (let i = 0; i < 20000; i++) once();
  let n = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  const limit = BigInt(minMs) * 1_000_000n;
  while (elapsed < limit) {
    for (let i = 0; i < 1000; i++) once();
    n += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / n;
}

function main(): void {
  loadSearchParameters();
  const bundle = synthea();
  const entries = (bundle as { entry: unknown[] }).entry.length;
  shapes.push([`transaction   POST / (Synthea, ${entries} entries)`, view('POST', '/', { body: bundle })]);
  console.log('classify: ns per call (in-process, after warm-up)');
  for (const [name, req] of shapes) {
    const ns = measure(req, 300);
    console.log(`${name.padEnd(64)} ${ns.toFixed(0).padStart(10)} ns`);
  }
}

main();
