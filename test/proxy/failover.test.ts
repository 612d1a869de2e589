// Upstream faults through the real proxy process: a pool member dying under read traffic
// (no client sees a failure), non-idempotent requests never retried (the upstreams' own
// logs count the attempts), idempotent reads retried once on another member, timeouts
// (504), a tier with no healthy member (503, /readyz 503) and its recovery (/readyz 200).

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send, type Reply } from '../helpers/http-client';
import { scrapeUntil, value } from '../helpers/metrics-text';
import { poll } from '../helpers/poll';
import type { Json } from '../helpers/json';

const SLOW_TIMEOUT_MS = 1000;

let dir: string;
let proxy: ProxyProcess;
let readA: RecordingUpstream;
let readB: RecordingUpstream;
let pairA: RecordingUpstream;
let pairB: RecordingUpstream;
let write: RecordingUpstream;
let slow: RecordingUpstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-failover-'));
  [readA, readB, pairA, pairB, write, slow] = await Promise.all(['read-a', 'read-b', 'pair-a', 'pair-b', 'write', 'slow'].map((name) => startRecordingUpstream({ name })));
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [readA.url, readB.url], timeoutMs: 30_000 },
        { name: 'slow', upstreams: [slow.url], timeoutMs: SLOW_TIMEOUT_MS },
        { name: 'pair', upstreams: [pairA.url, pairB.url], timeoutMs: 30_000 },
        { name: 'write', upstreams: [write.url], timeoutMs: 30_000 },
      ],
      rules: [
        { resources: ['Observation'], interactions: ['read', 'search-type'], tier: 'slow' },
        { resources: ['Encounter'], interactions: ['read', 'create', 'update'], tier: 'pair' },
        // A read served by the write tier: the read path's own answer when its tier has no member.
        { resources: ['Device'], interactions: ['read'], tier: 'write' },
        { resources: ['*'], interactions: ['read', 'search-type', 'capabilities'], tier: 'read' },
        { resources: ['*'], interactions: ['create', 'update'], tier: 'write' },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  for (const u of [readA, readB, pairA, pairB, write, slow]) await u?.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectOutcome(res: Reply, status: number, code: string, diagnostics: RegExp): void {
  expect({ status: res.status, resourceType: res.json?.resourceType }).toEqual({ status, resourceType: 'OperationOutcome' });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(res.json.issue.map((i: Json) => i.code)).toContain(code);
  expect(res.json.issue.map((i: Json) => i.diagnostics).join(' | ')).toMatch(diagnostics);
}

const patient = { resourceType: 'Patient', name: [{ family: 'Chalmers' }] };
const encounter = { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' } };

test('both members of a two-member tier serve reads (round-robin)', async () => {
  readA.clear();
  readB.clear();
  for (let i = 0; i < 10; i++) expect((await send(proxy.origin, 'GET', `/fhir/Patient/rr-${i}`)).status).toBe(200);
  expect(readA.traffic().length).toBeGreaterThan(0);
  expect(readB.traffic().length).toBeGreaterThan(0);
  expect(readA.traffic().length + readB.traffic().length).toBe(10);
});

test('a member killed under concurrent read traffic: every read still succeeds', async () => {
  readA.clear();
  readB.clear();
  const TOTAL = 300;
  const CONCURRENCY = 8;
  const statuses: number[] = [];
  let next = 0;
  let killed: Promise<void> | undefined;
  const worker = async (): Promise<void> => {
    while (next < TOTAL) {
      const i = next++;
      // Kill member A once it has served a share of the traffic, with reads in flight.
      if (i === TOTAL / 3) killed = readA.kill();
      const res = await send(proxy.origin, 'GET', `/fhir/Patient/kill-${i}`);
      statuses.push(res.status);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await killed;
  expect(statuses).toHaveLength(TOTAL);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  // A served some before it died; B served the rest.
  expect(readA.traffic().length).toBeGreaterThan(0);
  expect(readB.traffic().length).toBeGreaterThan(TOTAL / 2);
  const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_upstream_healthy_members', { tier: 'read' }) === 1);
  expect(value(samples, 'fhirguard_upstream_healthy_members', { tier: 'read' })).toBe(1);
  expect(value(samples, 'fhirguard_upstream_members', { tier: 'read' })).toBe(2);
  // /readyz still 200: the tier has one healthy member.
  const ready = (await waitReadyz(proxy, 200)) as Json;
  expect(ready.tiers.find((t: Json) => t.tier === 'read')).toMatchObject({ healthy: 1, members: 2 });
});

test('with the dead member revived, it gets traffic again after its health check', async () => {
  await readA.revive();
  readA.clear();
  await poll('the revived member to get traffic back', async () => {
    expect((await send(proxy.origin, 'GET', '/fhir/Patient/back')).status).toBe(200);
    return readA.traffic().length > 0;
  });
});

test('a read that breaks its connection is retried once on another member', async () => {
  pairA.clear();
  pairB.clear();
  pairA.setBehaviour({ kind: 'reset' });
  pairB.setBehaviour({ kind: 'reset' });
  try {
    const res = await send(proxy.origin, 'GET', '/fhir/Encounter/retry-me');
    expectOutcome(res, 502, 'transient', /'pair' upstream could not be reached or broke the connection/);
    // One attempt on each member: the retry went to the other one, and only once.
    expect([pairA.traffic().length, pairB.traffic().length].sort()).toEqual([1, 1]);
    const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_upstream_retries_total', { tier: 'pair' }) >= 1);
    expect(value(samples, 'fhirguard_upstream_retries_total', { tier: 'pair' })).toBe(1);
  } finally {
    pairA.setBehaviour({ kind: 'normal' });
    pairB.setBehaviour({ kind: 'normal' });
  }
});

test('a create that breaks its connection is not retried, although another member is healthy', async () => {
  await waitReadyz(proxy, 200); // both pair members back after their health checks
  await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_upstream_healthy_members', { tier: 'pair' }) === 2, 30_000);
  pairA.clear();
  pairB.clear();
  pairA.setBehaviour({ kind: 'reset' });
  pairB.setBehaviour({ kind: 'reset' });
  try {
    const res = await send(proxy.origin, 'POST', '/fhir/Encounter', { body: encounter });
    expectOutcome(res, 502, 'transient', /'pair' upstream/);
    expect(pairA.traffic().length + pairB.traffic().length).toBe(1);
    const update = await send(proxy.origin, 'PUT', '/fhir/Encounter/e1', { body: { ...encounter, id: 'e1' } });
    expectOutcome(update, 502, 'transient', /'pair' upstream/);
    expect(pairA.traffic().length + pairB.traffic().length).toBe(2);
  } finally {
    pairA.setBehaviour({ kind: 'normal' });
    pairB.setBehaviour({ kind: 'normal' });
  }
});

test("an upstream slower than the tier's timeoutMs: 504, not retried", async () => {
  slow.clear();
  slow.setBehaviour({ kind: 'slow', ms: SLOW_TIMEOUT_MS * 10 });
  try {
    const res = await send(proxy.origin, 'GET', '/fhir/Observation/slow-1');
    expectOutcome(res, 504, 'timeout', new RegExp(`'slow' upstream did not answer within ${SLOW_TIMEOUT_MS} ms`));
    expect(slow.traffic()).toHaveLength(1);
    const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_upstream_errors_total', { tier: 'slow', kind: 'timeout' }) >= 1);
    expect(value(samples, 'fhirguard_upstream_errors_total', { tier: 'slow', kind: 'timeout' })).toBe(1);
    expect(value(samples, 'fhirguard_requests_total', { tier: 'slow', interaction: 'read', resource_type: 'Observation', outcome: 'upstream-error' })).toBe(1);
  } finally {
    slow.setBehaviour({ kind: 'normal' });
  }
  // A timeout does not take the member out: the next read is served.
  expect((await send(proxy.origin, 'GET', '/fhir/Observation/slow-2')).status).toBe(200);
});

test("an upstream's own 500 reaches the client as it is (it is the server's answer, not a fault of the path)", async () => {
  write.setBehaviour({ kind: 'error500' });
  try {
    write.clear();
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient });
    expect(res.status).toBe(500);
    expect(res.json.issue[0].diagnostics).toBe('write failed');
    expect(write.traffic()).toHaveLength(1);
  } finally {
    write.setBehaviour({ kind: 'normal' });
  }
});

describe('the only member of a tier dies', () => {
  test('a create sent to it gets 502 or 503, and is not retried', async () => {
    write.clear();
    write.setBehaviour({ kind: 'reset' });
    const broken = await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient });
    expectOutcome(broken, 502, 'transient', /'write' upstream/);
    expect(write.traffic()).toHaveLength(1);
    write.setBehaviour({ kind: 'normal' });

    await write.kill();
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient });
    expect([502, 503]).toContain(res.status);
    expect(res.json.resourceType).toBe('OperationOutcome');
    expect(write.traffic()).toHaveLength(1); // nothing more reached it
  });

  test('once its health check fails: /readyz 503 naming the tier, and requests get 503 with Retry-After', async () => {
    const ready = (await waitReadyz(proxy, 503)) as Json;
    expect(ready.status).toBe('not-ready');
    expect(ready.tiers.find((t: Json) => t.tier === 'write')).toMatchObject({ healthy: 0, members: 1 });
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient });
    expectOutcome(res, 503, 'transient', /tier 'write' has no healthy upstream/);
    expect(res.headers['retry-after']).toBeDefined();
    // A read to that tier gets the same answer.
    const read = await send(proxy.origin, 'GET', '/fhir/Device/d1');
    expectOutcome(read, 503, 'transient', /tier 'write' has no healthy upstream/);
    expect(read.headers['retry-after']).toBeDefined();
    // Other tiers keep serving.
    expect((await send(proxy.origin, 'GET', '/fhir/Patient/still-here')).status).toBe(200);
    const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_upstream_errors_total', { tier: 'write', kind: 'unavailable' }) >= 1);
    expect(value(samples, 'fhirguard_upstream_errors_total', { tier: 'write', kind: 'unavailable' })).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'fhirguard_upstream_healthy_members', { tier: 'write' })).toBe(0);
  });

  test('when it is back: /readyz 200 and creates succeed', async () => {
    await write.revive();
    await waitReadyz(proxy, 200);
    write.clear();
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient });
    expect(res.status).toBe(201);
    // Nothing refused while it was down reached it once it was back: only this create.
    expect(write.traffic().map((r) => `${r.method} ${r.path}`)).toEqual(['POST /Patient']);
    expect((await send(proxy.origin, 'GET', '/fhir/Device/d1')).status).toBe(200);
    expect(write.traffic().map((r) => `${r.method} ${r.path}`)).toEqual(['POST /Patient', 'GET /Device/d1']);
  });
});

test('a client that hangs up before the upstream answers does not take the proxy down', async () => {
  // The upstream answers after the client has gone: the proxy must drop that answer, not die.
  // (Last in this file: when it fails, the proxy is gone.)
  slow.clear();
  slow.setBehaviour({ kind: 'slow', ms: 300 }); // well within the tier's timeout
  const died = proxy.exited.then(({ code, signal }) => {
    throw new Error(`the proxy exited (${code ?? signal}) after a client hung up:\n${proxy.stderr().slice(-3000)}`);
  });
  try {
    for (let i = 0; i < 4; i++) {
      const req = http.get(`${proxy.origin}/fhir/Observation/gone-${i}`, { agent: false });
      req.on('error', () => undefined); // the abort below
      const mine = (r: { path: string }) => r.path === `/Observation/gone-${i}`;
      await Promise.race([slow.waitFor(mine), died]);
      req.destroy();
      await Promise.race([slow.waitAnswered(mine), died]);
    }
  } finally {
    slow.setBehaviour({ kind: 'normal' });
  }
  // Whatever the proxy does with the late answers happens within a few event-loop turns.
  for (let i = 0; i < 20; i++) {
    const res = await Promise.race([send(proxy.origin, 'GET', `/fhir/Observation/after-${i}`), died]);
    expect(res.status).toBe(200);
  }
  died.catch(() => undefined);
  expect({ exitCode: proxy.child.exitCode, signal: proxy.child.signalCode }).toEqual({ exitCode: null, signal: null });
});

test('the proxy logged no internal error through all of this', () => {
  expect(
    proxy
      .logs()
      .filter((l) => l.level >= 50 && l.msg !== 'request')
      .map((l) => l.msg),
  ).toEqual([]);
});
