// /metrics on the admin listener of the real proxy process after a known mix of traffic:
// request counts per tier, interaction, resource type and outcome, refusals by reason,
// request/upstream/stage histograms with the counts that traffic implies, process metrics,
// and bounded labels (a type the client made up never becomes a label value). The FHIR
// port serves no metrics.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send } from '../helpers/http-client';
import { scrape, scrapeUntil, sum, value, type Sample } from '../helpers/metrics-text';

let dir: string;
let proxy: ProxyProcess;
let readUp: RecordingUpstream;
let writeUp: RecordingUpstream;
let samples: Sample[];
let text: string;

const patient = { resourceType: 'Patient', name: [{ family: 'Chalmers' }] };
/** Made-up type names: they must never show up in /metrics. */
const MADE_UP = ['Zyxwvutsrq', 'Qwertyuiopasdf'];

/** The traffic mix, and what each request must count as. */
const MIX: { method: string; target: string; body?: object; status: number }[] = [
  ...[1, 2, 3].map((i) => ({ method: 'GET', target: `/fhir/Patient/p${i}`, status: 200 })),
  ...[1, 2].map(() => ({ method: 'GET', target: '/fhir/Observation?code=29463-7', status: 200 })),
  { method: 'POST', target: '/fhir/Patient', body: patient, status: 201 },
  { method: 'GET', target: `/fhir/${MADE_UP[0]}/1`, status: 404 },
  { method: 'GET', target: `/fhir/${MADE_UP[1]}?name=x`, status: 404 },
  { method: 'DELETE', target: '/fhir/Patient/p1', status: 403 },
  { method: 'POST', target: '/fhir/Patient', body: { resourceType: 'Patient', birthDate: 'not-a-date' }, status: 422 },
  { method: 'GET', target: '/fhir/Patient?shoe-size=42', status: 400 },
  { method: 'GET', target: '/outside/the/base', status: 404 },
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-metrics-'));
  readUp = await startRecordingUpstream({ name: 'read' });
  writeUp = await startRecordingUpstream({ name: 'write' });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [readUp.url] },
        { name: 'write', upstreams: [writeUp.url] },
      ],
      rules: [
        { resources: ['*'], interactions: ['read', 'search-type', 'capabilities'], tier: 'read' },
        { resources: ['*'], interactions: ['create'], tier: 'write' },
      ],
    },
  });
  for (const m of MIX) {
    const res = await send(proxy.origin, m.method, m.target, { body: m.body });
    expect({ target: m.target, status: res.status }).toEqual({ target: m.target, status: m.status });
  }
  // One read the upstream answers with its own 500.
  readUp.setBehaviour({ kind: 'error500' });
  expect((await send(proxy.origin, 'GET', '/fhir/Patient/p9')).status).toBe(500);
  readUp.setBehaviour({ kind: 'normal' });
  // One read whose client hangs up while the upstream is still working on it.
  readUp.setBehaviour({ kind: 'slow', ms: 1500 });
  const client = net.connect(Number(new URL(proxy.origin).port), '127.0.0.1');
  client.on('error', () => {});
  client.write(`GET /fhir/Patient/p8 HTTP/1.1\r\nHost: ${proxy.host}\r\n\r\n`);
  await readUp.waitFor((r) => r.path === '/Patient/p8');
  client.destroy();
  await readUp.waitAnswered((r) => r.path === '/Patient/p8');
  readUp.setBehaviour({ kind: 'normal' });
  // Metrics are recorded as each response finishes: wait until all of them are in.
  ({ samples, text } = await scrapeUntil(proxy.adminUrl, (s) => sum(s, 'fhirguard_requests_total') >= MIX.length + 2));
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await readUp?.close();
  await writeUp?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('fhirguard_requests_total counts each request once, by tier, interaction, resource type and outcome', () => {
  const series = samples
    .filter((s) => s.name === 'fhirguard_requests_total' && s.value > 0)
    .map((s) => `${s.labels.tier} ${s.labels.interaction} ${s.labels.resource_type || '-'} ${s.labels.outcome} = ${s.value}`)
    .sort();
  expect(series).toEqual(
    [
      'read read Patient success = 3',
      'read search-type Observation success = 2',
      'write create Patient success = 1',
      // Refused before any interaction was known: the unknown types and the path outside the base.
      'none none - refused = 3',
      // Classified, then refused by the search check (before the policy: no tier), the policy (no tier) and validation (tier known).
      'none search-type Patient refused = 1',
      'none delete Patient refused = 1',
      'write create Patient refused = 1',
      'read read Patient server-error = 1',
      // The client hung up before its answer: counted once, as client-closed.
      'read read Patient client-closed = 1',
    ].sort(),
  );
});

test('a client that hangs up is logged once at info, saying the request had been forwarded', () => {
  const closed = proxy.logs().filter((l) => l.msg === 'client closed the connection before the response was complete');
  expect(closed).toHaveLength(1);
  expect(closed[0]).toMatchObject({ level: 30, method: 'GET', tier: 'read', interaction: 'read', type: 'Patient', forwarded: true });
  expect(proxy.logs().filter((l) => (l.level as number) >= 50)).toEqual([]);
});

test('fhirguard_refusals_total counts refusals by reason', () => {
  const refusals = Object.fromEntries(samples.filter((s) => s.name === 'fhirguard_refusals_total' && s.value > 0).map((s) => [s.labels.reason, s.value]));
  expect(refusals).toEqual({ 'unknown-type': 2, 'unknown-path': 1, policy: 1, 'invalid-resource': 1, 'invalid-search': 1 });
});

test('request and upstream duration histograms count what was served', () => {
  expect(value(samples, 'fhirguard_request_duration_seconds_count', { tier: 'read', interaction: 'read' })).toBe(4);
  // The search refused by the search check has no tier: it never reached the policy.
  expect(value(samples, 'fhirguard_request_duration_seconds_count', { tier: 'read', interaction: 'search-type' })).toBe(2);
  expect(value(samples, 'fhirguard_request_duration_seconds_count', { tier: 'write', interaction: 'create' })).toBe(2);
  // The hung-up read has no duration (it never finished): it is in the counter only.
  expect(sum(samples, 'fhirguard_request_duration_seconds_count')).toBe(MIX.length + 1);
  // Only forwarded requests reach an upstream: 3 + 2 + 1 reads and searches, 1 create, the 500.
  expect(value(samples, 'fhirguard_upstream_duration_seconds_count', { tier: 'read' })).toBe(6);
  expect(value(samples, 'fhirguard_upstream_duration_seconds_count', { tier: 'write' })).toBe(1);
  for (const tier of ['read', 'write']) {
    const count = value(samples, 'fhirguard_upstream_duration_seconds_count', { tier });
    expect(value(samples, 'fhirguard_upstream_duration_seconds_bucket', { tier, le: '+Inf' })).toBe(count);
    expect(value(samples, 'fhirguard_upstream_duration_seconds_sum', { tier })).toBeGreaterThan(0);
  }
  // The total time of a request includes its upstream time.
  const total = value(samples, 'fhirguard_request_duration_seconds_sum', { tier: 'read', interaction: 'read' });
  expect(total).toBeGreaterThan(0);
});

test('fhirguard_stage_duration_seconds has one observation per request that reached each stage', () => {
  const count = (stage: string) => value(samples, 'fhirguard_stage_duration_seconds_count', { stage });
  // classify passed: the mix, the 500 and the hung-up read, but the 2 unknown types and the path outside the base.
  expect(count('classify')).toBe(MIX.length + 2 - 3);
  // policy passed: minus the unknown search parameter (checked before the policy) and the denied delete.
  expect(count('policy')).toBe(MIX.length + 2 - 5);
  // validate passed: minus the invalid resource and the unknown search parameter.
  expect(count('validate')).toBe(MIX.length + 2 - 6);
  // proxy overhead is measured on forwarded requests.
  expect(count('proxy')).toBe(7);
  for (const stage of ['classify', 'policy', 'validate', 'proxy']) {
    expect(value(samples, 'fhirguard_stage_duration_seconds_bucket', { stage, le: '+Inf' })).toBe(count(stage));
  }
});

test('process default metrics are exported', () => {
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    expect({ name, present: samples.some((s) => s.name === name) }).toEqual({ name, present: true });
  }
  expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
});

test('label values stay bounded: no made-up type, path or reason appears anywhere', () => {
  for (const word of [...MADE_UP, 'outside', 'shoe-size']) expect(text).not.toContain(word);
  const resourceTypes = new Set(samples.filter((s) => s.labels.resource_type !== undefined).map((s) => s.labels.resource_type));
  expect([...resourceTypes].sort()).toEqual(['', 'Observation', 'Patient']);
  const outcomes = new Set(samples.filter((s) => s.labels.outcome !== undefined).map((s) => s.labels.outcome));
  for (const o of outcomes) expect(['success', 'client-error', 'server-error', 'refused', 'upstream-error', 'client-closed']).toContain(o);
  const tiers = new Set(samples.filter((s) => s.labels.tier !== undefined).map((s) => s.labels.tier));
  for (const t of tiers) expect(['read', 'write', 'none']).toContain(t);
});

test('a flood of made-up types adds no series', async () => {
  // fhirguard's own series (process metrics come and go with GC kinds and handle types).
  const own = (s: Sample[]) => s.filter((x) => x.name.startsWith('fhirguard_')).map((x) => `${x.name}${JSON.stringify(x.labels)}`);
  const before = own((await scrape(proxy.adminUrl)).samples);
  const letters = (i: number) => String.fromCharCode(97 + (i % 26)) + String.fromCharCode(97 + Math.floor(i / 26));
  for (let i = 0; i < 50; i++) expect((await send(proxy.origin, 'GET', `/fhir/Madeup${letters(i)}/1`)).status).toBe(404);
  const after = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_refusals_total', { reason: 'unknown-type' }) >= 52);
  expect(value(after.samples, 'fhirguard_refusals_total', { reason: 'unknown-type' })).toBe(52);
  expect(own(after.samples)).toEqual(before);
});

test('metrics are served on the admin listener only', async () => {
  const onFhirPort = await send(proxy.origin, 'GET', '/metrics');
  expect(onFhirPort.status).toBe(404);
  expect(onFhirPort.json.resourceType).toBe('OperationOutcome');
  const admin = await fetch(`${proxy.adminUrl}/metrics`);
  expect(admin.headers.get('content-type')).toMatch(/^text\/plain/);
  const health = await fetch(`${proxy.adminUrl}/healthz`);
  expect(health.status).toBe(200);
});
