// The whole FHIR interaction suite with enforcement on, as production runs it: the real agent
// (root) runs every tier of the shipped policy as runc containers under the shipped seccomp
// and eBPF profiles, mode enforce, eBPF in its serve phase, and runs the proxy in front
// confined the same way (its own container, identity and profiles: the front door), routing
// by the shipped policy. Every case of test/fhir-cases goes through the proxy, so each
// interaction reaches the confined workers of the tier the policy sends it to (reads to the
// read-only read tier, creates/updates/patches to write, bundles and operations to ops).
// Profiles must never break a legitimate interaction: each case checks its FHIR result, and
// at the end the agent must report no syscall violation on any tier and no worker that
// crashed, was killed or restarted.
//
// Deletes: the shipped policy denies them (checked below: 403 from the proxy, no worker sees
// them). Its comment tells operators how to allow them, so the cases' deletes (DELETE
// requests, bundles with DELETE entries) go through a second proxy on the same agent whose
// policy is the shipped one with delete routed to the write tier (a proxy this test starts,
// unconfined): the write tier's profiles must let deletes through too.
//
// Also what no request can cause but every tier must get through: a write worker that died
// in the middle of a commit (its hot journal, a grown database).
//
// What the eBPF counters cannot show: a syscall seccomp refuses (EPERM) never reaches the
// sys_enter tracepoint. Such a refusal breaks the request it happens in, which the case's
// FHIR assertions catch.

import { resolveIdentities } from '../../src/enforce/identities';
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import type { WorkerInfo } from '../../src/agent-api/client';
import { freePort } from '../../src/record/ports';
import { journalOf, leaveCrashedCommit } from '../../src/record/writer-crash';
import { restCases } from '../fhir-cases';
import { frontDoorCases } from '../fhir-cases/front-door';
import { SHIPPED_POLICY, shippedPolicy, withDeletes } from '../fhir-cases/policies';
import { expectOutcome, expectStatus, patient, proxyTarget, type FhirTarget } from '../fhir-cases/target';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';
import { parseMetrics, type Sample } from '../helpers/metrics-text';
import { closeClients } from '../helpers/http-client';
import { poll } from '../helpers/poll';

const TIERS = ['read', 'write', 'ops'];

let dir: string;
let agent: AgentProcess;
/** The agent's confined front door. */
let shipped: { fhirUrl: string; adminUrl: string };
let deleting: ProxyProcess;
let target: FhirTarget;
let atStart: WorkerInfo[];
const changes: WorkerInfo[] = [];
let watch: { stop(): void } | undefined;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('fhir-enforced');
  // FHIRGUARD_PROFILES: run the suite against other profiles (new ones, before rolling them out).
  const profiles = process.env.FHIRGUARD_PROFILES ?? path.join(REPO, 'profiles');
  // The front door's identity and the workers' pass through the test's directory.
  chmodSync(dir, 0o711);
  const [listen, admin] = [await freePort(), await freePort()];
  const frontDoor = ['--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`];
  agent = await startAgent(dir, ['--policy', SHIPPED_POLICY, '--profiles', profiles, '--log-level', 'warn', '--front-door', JSON.stringify(frontDoor)]);
  atStart = await waitWorkers(agent.client, allServing, 90_000, agent.log);
  shipped = { fhirUrl: `http://127.0.0.1:${listen}/fhir`, adminUrl: `http://127.0.0.1:${admin}` };
  deleting = await startProxy({ dir, policy: withDeletes(shippedPolicy()), args: ['--agent', agent.socketPath] });
  await Promise.all([readyz(shipped.adminUrl), waitReadyz(deleting, 200)]);
  target = proxyTarget(shipped.fhirUrl, deleting.fhirUrl);
  // Every state change from here on: a worker killed by its profile shows up even if it is back.
  watch = agent.client.watch((w) => {
    if (w.state !== 'serving') changes.push(w);
  });
}, 180_000);

afterAll(async () => {
  watch?.stop();
  closeClients();
  await stopAllProxies();
  if (agent) await agent.stop();
  killLeftoverAgents();
  removeDir(dir);
});

test('every tier of the shipped policy runs confined: containers, seccomp, eBPF in enforce mode, serve phase', async () => {
  expect(atStart.map((w) => [w.tier, w.state, w.confinement]).sort()).toEqual(
    [
      ['ops', 'serving', 'container'],
      ['read', 'serving', 'container'],
      ['read', 'serving', 'container'],
      ['write', 'serving', 'container'],
    ].sort(),
  );
  const e = await agent.client.enforcement();
  expect(e.degraded).toBe(false);
  expect(e.tiers.map((t) => t.tier)).toEqual(TIERS);
  for (const t of e.tiers) {
    expect({ tier: t.tier, status: t.status, mode: t.mode }).toEqual({ tier: t.tier, status: 'running', mode: 'enforce' });
    for (const m of ['seccomp', 'ebpf', 'mount_ro', 'netns'] as const) expect({ tier: t.tier, m, active: t.mechanisms[m].active }).toEqual({ tier: t.tier, m, active: true });
  }
  const counters = await agent.client.counters();
  expect(counters.available).toBe(true);
  expect(counters.tiers.map((t) => [t.tier, t.action])).toEqual([...TIERS, 'proxy'].map((t) => [t, 'enforce']));
  expect(e.frontDoor).toMatchObject({ state: 'serving', confinement: 'container', mode: 'enforce', restarts: 0, profile: { tier: 'proxy' } });
});

restCases(() => target);
frontDoorCases(() => target);

describe('what the shipped policy refuses never reaches a worker', () => {
  test('deletes, conditional deletes and bundles with a delete entry: 403 from the proxy', async () => {
    const only = proxyTarget(shipped.fhirUrl);
    const { json: p } = await only.req('POST', '/Patient', patient());
    expectOutcome(await only.req('DELETE', `/Patient/${p.id}`), 403, /delete of Patient is denied by the policy/);
    expectOutcome(await only.req('DELETE', `/Patient?_id=${p.id}`), 403, /conditional delete of Patient is denied/);
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `Patient/${p.id}` } }] };
    expectOutcome(await only.req('POST', '/', bundle), 403, /Bundle\.entry\[0\]: delete of Patient is denied/);
    expect((await only.req('GET', `/Patient/${p.id}`)).json.meta.versionId).toBe('1');
  });
});

describe('a write worker that died mid-commit (out of memory, killed, a power cut)', () => {
  test('the read tier answers 503 meanwhile, the write tier rolls the commit back at its next write, then all reads as before', async () => {
    const { json: p } = await target.req('POST', '/Patient', patient());
    // The crashing writer runs as the writing workers do (writer-crash.ts); it must reach the database.
    chmodSync(dir, 0o711);
    await leaveCrashedCommit(agent.db, resolveIdentities({}, false).writer, agent.install);
    // Both read workers (round-robin) meet the hot journal: they cannot roll it back.
    for (let i = 0; i < 4; i++) expectOutcome(await target.req('GET', `/Patient/${p.id}`), 503, /awaits recovery by a write worker/);
    const updated = await target.req('PUT', `/Patient/${p.id}`, { ...p, gender: 'female' });
    expectStatus(updated, 200);
    expect(updated.json.meta.versionId).toBe('2');
    expect(existsSync(journalOf(agent.db))).toBe(false);
    const read = await target.req('GET', `/Patient/${p.id}`);
    expectStatus(read, 200);
    expect(read.json).toMatchObject({ gender: 'female', meta: { versionId: '2' } });
  });
});

describe('after every case', () => {
  async function metrics(p: { adminUrl: string }): Promise<Sample[]> {
    const res = await fetch(`${p.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    return parseMetrics(await res.text());
  }

  test('every interaction kind was answered by the confined workers of its tier, none failed upstream', async () => {
    const served = new Set<string>();
    for (const p of [shipped, deleting]) {
      const samples = await metrics(p);
      for (const s of samples.filter((s) => s.name === 'fhirguard_requests_total' && s.value > 0)) {
        if (s.labels.outcome === 'success') served.add(`${s.labels.tier} ${s.labels.interaction}`);
        expect({ series: s.labels, outcome: s.labels.outcome }).not.toEqual({ series: s.labels, outcome: 'upstream-error' });
      }
      expect(samples.filter((s) => s.name === 'fhirguard_upstream_errors_total' && s.value > 0)).toEqual([]);
    }
    expect([...served].sort()).toEqual(
      [
        'read read',
        'read vread',
        'read search-type',
        'read history-instance',
        'read history-type',
        'read history-system',
        'read capabilities',
        'write create',
        'write update',
        'write patch',
        'write delete',
        'ops batch',
        'ops transaction',
        'ops operation',
      ].sort(),
    );
  });

  test('the agent: 0 syscall violations on any tier, no egress attempt, no worker crashed, killed or restarted', async () => {
    const counters = await agent.client.counters();
    for (const t of counters.tiers) {
      const violations = Object.entries(t.syscalls).filter(([, s]) => s.violations > 0);
      expect({ tier: t.tier, violations, egressDenied: t.egressDenied }).toEqual({ tier: t.tier, violations: [], egressDenied: 0 });
    }
    // The workers did the work: their cgroups' calls as the eBPF maps counted them.
    const calls = (tier: string, ...names: string[]): number => names.reduce((n, sc) => n + (counters.tiers.find((t) => t.tier === tier)?.syscalls[sc]?.calls ?? 0), 0);
    expect(calls('read', 'pread64')).toBeGreaterThan(100);
    expect(calls('write', 'fsync', 'fdatasync')).toBeGreaterThan(100);
    expect(calls('ops', 'fsync', 'fdatasync')).toBeGreaterThan(10);
    // The front door served every case but the deletes in its serve phase, confined: no violation (above), no restart.
    expect(calls('proxy', 'accept4')).toBeGreaterThan(0);
    expect(calls('proxy', 'write', 'writev')).toBeGreaterThan(100);
    expect(calls('proxy', 'connect')).toBeGreaterThan(0);
    expect((await agent.client.enforcement()).frontDoor).toMatchObject({ state: 'serving', restarts: 0, lastExit: null });

    const now = await agent.client.workers();
    expect(changes.map((w) => [w.id, w.state, w.lastExit])).toEqual([]);
    expect(now.map((w) => ({ id: w.id, state: w.state, restarts: w.restarts, lastExit: w.lastExit, pid: w.pid })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      atStart.map((w) => ({ id: w.id, state: 'serving', restarts: 0, lastExit: null, pid: w.pid })).sort((a, b) => a.id.localeCompare(b.id)),
    );
    expect(agent.log()).not.toMatch(/"level":(50|60)/);
  });
});

/** Until the front door's /readyz answers 200 (it starts once the agent's API is served). */
async function readyz(adminUrl: string): Promise<void> {
  await poll("the front door's /readyz to answer 200", async () => (await fetch(`${adminUrl}/readyz`)).status === 200, {
    timeoutMs: 90_000,
    intervalMs: 100,
    detail: () => agent.log().slice(-3000),
  });
}
