// One front door, one process per core: the supervisor binds the FHIR listener and runs its
// proxy processes on it (src/proxy/processes/). Both processes serve; /metrics on the public
// admin listener is one coherent set summed over them; the one audit trail has every request;
// a killed process is replaced while the other serves every request sent meanwhile; a reload
// reaches every process; SIGTERM stops them all. `--processes 1` has no supervisor.

import { childrenOf } from '../../bench/lib/cpu-time';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { send } from '../helpers/http-client';
import { scrape, sum, value } from '../helpers/metrics-text';
import { poll } from '../helpers/poll';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { requestIdOf, trailEvents } from '../audit/trail-helpers';

let dir: string;
let up: RecordingUpstream;
let proxy: ProxyProcess;

const policy = (extra: string[] = []) => stringify({ tiers: [{ name: 'all', upstreams: [up.url] }], rules: [{ resources: ['*'], interactions: ['read', 'search-type', ...extra], tier: 'all' }] });

/** The proxy processes under `pid`: their pid and private admin listener, from the supervisor's log. */
function processes(p: ProxyProcess): { child: number; admin: string }[] {
  const serving = p.logs().filter((l) => l.msg === 'proxy process serving') as unknown as { child: number; admin: string }[];
  return serving.filter((s) => alive(s.child));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function servedBy(admin: string): Promise<number> {
  const json = (await (await fetch(`http://${admin}/metrics.json`)).json()) as { name: string; values: { value: number; labels: Record<string, string> }[] }[];
  return (json.find((m) => m.name === 'fhirguard_requests_total')?.values ?? []).filter((v) => v.labels.resource_type === 'Patient').reduce((a, v) => a + v.value, 0);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-processes-'));
  up = await startRecordingUpstream({ name: 'up' });
  proxy = await startProxy({ dir, policy: policy(), args: ['--processes', '2', '--audit-dir', path.join(dir, 'trail')] });
  await poll('both proxy processes serving', () => processes(proxy).length === 2);
}, 120_000);

afterAll(async () => {
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('both processes serve, /metrics sums them, and the one trail has every request', async () => {
  const ids: string[] = [];
  // New connections until both processes have accepted some: the kernel decides who accepts.
  const [a, b] = processes(proxy);
  // The supervisor's children are the two processes it logged (and what --processes 1 must not have).
  expect(childrenOf(proxy.pid).sort()).toEqual([a.child, b.child].sort());
  for (let n = 0; n < 400 && (n < 40 || (await servedBy(a.admin)) === 0 || (await servedBy(b.admin)) === 0); n++) {
    const r = await send(proxy.origin, 'GET', `/fhir/Patient/p${n}`, { fresh: true });
    expect(r.status).toBe(200);
    ids.push(String(r.headers['x-request-id']));
  }
  const [byA, byB] = [await servedBy(a.admin), await servedBy(b.admin)];
  expect(byA).toBeGreaterThan(0);
  expect(byB).toBeGreaterThan(0);
  expect(byA + byB).toBe(ids.length);

  const { samples } = await scrape(proxy.adminUrl);
  expect(sum(samples, 'fhirguard_requests_total', { resource_type: 'Patient' })).toBe(ids.length);
  expect(value(samples, 'fhirguard_proxy_processes', { state: 'listening' })).toBe(2);
  // Facts of the build are said once, not once per process.
  expect(samples.filter((s) => s.name === 'fhirguard_build_info').map((s) => s.value)).toEqual([1]);

  const want = new Set(ids);
  const events = await poll('every request in the trail', () => {
    const seen = trailEvents(path.join(dir, 'trail')).filter((e) => want.has(requestIdOf(e) ?? ''));
    return seen.length === ids.length && seen;
  });
  expect(new Set(events.map((e) => requestIdOf(e))).size).toBe(ids.length);
});

test('a killed process is replaced, and every request sent meanwhile is served by the other', async () => {
  const [victim] = processes(proxy);
  // A scrape before the kill: the supervisor has seen what the victim counted.
  const countedBefore = sum((await scrape(proxy.adminUrl)).samples, 'fhirguard_requests_total', { resource_type: 'Patient' });
  process.kill(victim.child, 'SIGKILL');
  const statuses: number[] = [];
  // Requests sent from the moment of the kill until the replacement serves.
  await poll(
    'the replacement serving',
    async () => {
      statuses.push((await send(proxy.origin, 'GET', '/fhir/Patient/during', { fresh: true })).status);
      const now = processes(proxy);
      return now.length === 2 && !now.some((p) => p.child === victim.child);
    },
    { timeoutMs: 60_000, intervalMs: 10 },
  );
  expect(statuses.length).toBeGreaterThan(0);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
  const { samples } = await scrape(proxy.adminUrl);
  expect(value(samples, 'fhirguard_proxy_processes_replaced_total')).toBe(1);
  // What the killed process had counted stays in the totals: no counter goes down.
  expect(sum(samples, 'fhirguard_requests_total', { resource_type: 'Patient' })).toBeGreaterThanOrEqual(countedBefore + statuses.length);
  expect(proxy.logs().some((l) => l.msg.includes(`proxy process ${victim.child} exited (SIGKILL)`))).toBe(true);
});

test('a reload reaches every process', async () => {
  expect((await send(proxy.origin, 'GET', '/fhir/Patient/1/_history/1')).status).toBe(403);
  writeFileSync(proxy.policyFile, policy(['vread']));
  const res = await fetch(`${proxy.adminUrl}/reload`, { method: 'POST' });
  expect(res.status).toBe(200);
  const answer = (await res.json()) as { result: string; policy: { digest: string } };
  expect(answer.result).toBe('applied');
  // Each process answers vread now, whichever accepts the connection.
  for (const p of processes(proxy)) {
    const json = (await (await fetch(`http://${p.admin}/metrics.json`)).json()) as { name: string; values: { labels: Record<string, string> }[] }[];
    expect(json.find((m) => m.name === 'fhirguard_policy_info')?.values.map((v) => v.labels.digest)).toEqual([answer.policy.digest]);
  }
  for (let n = 0; n < 10; n++) expect((await send(proxy.origin, 'GET', '/fhir/Patient/1/_history/1', { fresh: true })).status).toBe(200);
});

test('SIGTERM stops every process and the supervisor, with status 0', async () => {
  const children = processes(proxy).map((p) => p.child);
  expect(children).toHaveLength(2);
  expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  expect(children.filter(alive)).toEqual([]);
});

test('--processes 1 runs one process, no supervisor', async () => {
  const single = await startProxy({ dir, policy: policy(), args: ['--processes', '1'] });
  expect(childrenOf(single.pid)).toEqual([]);
  expect(single.logs().some((l) => l.msg === 'proxy process serving')).toBe(false);
  expect((await send(single.origin, 'GET', '/fhir/Patient/1')).status).toBe(200);
  expect(await single.stop()).toEqual({ code: 0, signal: null });
});
