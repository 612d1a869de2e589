// Time per policy decision, for the request shapes that cost most (searches whose reach is
// checked, a 50-entry transaction) and the cheapest (a read), with the shipped policy (every
// type readable: reach checks are skipped) and with it restricted (reach computed). Then the
// compiled table against a rule-by-rule scan on a policy of one rule per R4 type.
// Run: npx tsc -p tsconfig.json && node dist/bench/policy.js

import * as fs from 'node:fs';
import * as path from 'node:path';
import { classify, type RequestView } from '../src/fhir/classify';
import type { Interaction } from '../src/fhir/interaction';
import { R4_RESOURCE_TYPES } from '../src/fhir/r4-resource-types';
import { compilePolicy, loadPolicy, type Policy } from '../src/policy';

function view(method: string, url: string, extra: Partial<RequestView> = {}): RequestView {
  const q = url.indexOf('?');
  return { method, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: {}, ...extra };
}

function timeNs(f: () => unknown, minMs: number): number {
  for (let i = 0; i < 1000; i++) f();
  let n = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(minMs) * 1_000_000n;
  while (process.hrtime.bigint() - start < limit) {
    for (let i = 0; i < 100; i++) f();
    n += 100;
  }
  return Number(process.hrtime.bigint() - start) / n;
}

/** 50 entries as a client's transaction would have them: creates (some conditional), updates, reads, searches. */
function transaction50(): RequestView {
  const requests: Record<string, unknown>[] = [];
  for (let k = 0; k < 50; k++) {
    const r = k % 5;
    if (r === 0) requests.push({ method: 'POST', url: 'Patient', ifNoneExist: `identifier=http://acme.org|${k}` });
    else if (r === 1) requests.push({ method: 'POST', url: 'Observation' });
    else if (r === 2) requests.push({ method: 'PUT', url: `Encounter/e${k}` });
    else if (r === 3) requests.push({ method: 'GET', url: `Patient/p${k}` });
    else requests.push({ method: 'GET', url: `Observation?subject=Patient/p${k}&_include=Observation:subject` });
  }
  const body = { resourceType: 'Bundle', type: 'transaction', entry: requests.map((request) => ({ request, resource: { resourceType: 'Patient' } })) };
  return view('POST', '/', { body });
}

interface ScanRule {
  types: ReadonlySet<string> | '*';
  kinds: ReadonlySet<string>;
  tier?: string;
}

/** The primary decision made the way a policy engine without a compiled table would: rule by rule. */
function scan(rules: readonly ScanRule[], i: Interaction): string | undefined {
  for (const r of rules) {
    if (r.types !== '*' && !(i.resourceType !== undefined && r.types.has(i.resourceType))) continue;
    if (r.kinds.has(i.kind)) return r.tier;
  }
  return undefined;
}

function main(): void {
  const file = path.resolve(__dirname, '..', '..', 'profiles', 'policy.yaml');
  const shipped = loadPolicy(file);
  // The shipped policy with Practitioner and AuditEvent searches denied: every reach is computed.
  const text = fs.readFileSync(file, 'utf8');
  const restrictedText = text.replace(/^rules:.*\n/m, 'rules:\n  - resources: [Practitioner, AuditEvent]\n    interactions: [search-type]\n    deny: true\n');
  if (restrictedText === text) throw new Error(`no 'rules:' line in ${file}`);
  const restricted = compilePolicy(restrictedText, 'restricted.yaml');
  const shapes: [string, Interaction][] = [
    ['read          GET Patient/123', classify(view('GET', '/Patient/123'))],
    ['search        GET Observation?subject=...&code=...&date=...', classify(view('GET', '/Observation?subject=Patient/123&code=http://loinc.org|8867-4&date=ge2020-01-01&_count=50'))],
    ['_include      GET Encounter?status=..&_include=Encounter:subject x2', classify(view('GET', '/Encounter?status=finished&_include=Encounter:subject&_include=Encounter:service-provider'))],
    ['chain         GET Observation?subject:Patient.organization.name=x', classify(view('GET', '/Observation?subject:Patient.organization.name=x'))],
    ['_has          GET Patient?_has:Observation:patient:code=x', classify(view('GET', '/Patient?_has:Observation:patient:code=1234-5'))],
    ['iterate *     GET Location?_include:iterate=*', classify(view('GET', '/Location?_include:iterate=*'))],
    ['refused reach GET Encounter?_include=Encounter:practitioner', classify(view('GET', '/Encounter?_include=Encounter:practitioner'))],
    ['system        GET ?_type=Patient,Observation', classify(view('GET', '/?_type=Patient,Observation'))],
    ['transaction   POST / (50 entries)', classify(transaction50())],
  ];

  console.log('policy.decide(): ns per decision');
  console.log(`${''.padEnd(66)} ${'shipped'.padStart(9)} ${'restricted'.padStart(12)}`);
  for (const [name, i] of shapes) {
    const a = timeNs(() => decideOrRefuse(shipped, i), 300);
    const b = timeNs(() => decideOrRefuse(restricted, i), 300);
    console.log(`${name.padEnd(66)} ${a.toFixed(0).padStart(6)} ns ${b.toFixed(0).padStart(9)} ns`);
  }
  const del = classify(view('DELETE', '/Patient/123'));
  console.log(
    `${'refused       DELETE Patient/123 (403 FhirError built)'.padEnd(66)} ${timeNs(() => decideOrRefuse(shipped, del), 300)
      .toFixed(0)
      .padStart(6)} ns`,
  );

  // Table vs scan: one rule per R4 type, the request matching the last one.
  const types = R4_RESOURCE_TYPES;
  const many = compilePolicy(`tiers: [{name: read}]\nrules:\n${types.map((t) => `  - resources: [${t}]\n    interactions: [read]\n    tier: read\n`).join('')}`, 'many.yaml');
  const rules: ScanRule[] = types.map((t) => ({ types: new Set([t]), kinds: new Set(['read']), tier: 'read' }));
  const last = classify(view('GET', `/${types[types.length - 1]}/1`));
  const ours = timeNs(() => many.decide(last), 300);
  const base = timeNs(() => scan(rules, last), 300);
  console.log(`\n${types.length} rules, request matching the last: decide ${ours.toFixed(0)} ns, rule scan ${base.toFixed(0)} ns, ratio ${(ours / base).toFixed(2)}`);
}

function decideOrRefuse(policy: Policy, i: Interaction): unknown {
  try {
    return policy.decide(i);
  } catch (e) {
    return e;
  }
}

main();
