// A real `fhirguard agent` (root, runc, eBPF) running the shipped policy's tiers: its API
// tells where the workers are and what state they are in, what is enforced and what the
// kernel counted; a killed worker is reported at once and restarted while the tier's other
// worker keeps serving; SIGTERM stops everything.

import { resolveIdentities } from '../../src/enforce/identities';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { WorkerInfo } from '../../src/agent-api/client';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { closeClient, fhirRequest } from '../helpers/worker-process';
import { poll } from '../helpers/poll';

let dir: string;
let agent: AgentProcess;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('agent');
  agent = await startAgent(dir);
  await waitWorkers(agent.client, allServing, 90_000, agent.log);
}, 180_000);

afterAll(async () => {
  if (agent) {
    for (const w of await agent.client.workers().catch(() => [] as WorkerInfo[])) await closeClient(w.socketPath);
    await agent.stop();
  }
  killLeftoverAgents();
  removeDir(dir);
});

function rawGet(socketPath: string, p: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET /workers: every worker of the shipped tiers, confined, serving FHIR at its address', async () => {
  const ws = await agent.client.workers();
  expect(ws.map((w) => w.id).sort()).toEqual(['ops-0', 'read-0', 'read-1', 'write-0']);
  for (const w of ws) {
    expect(w).toMatchObject({ state: 'serving', confinement: 'container', restarts: 0 });
    expect(w.address).toBe(`unix:${w.socketPath}`);
    // Its own cgroup, named after this agent's state directory so that agents never share one.
    expect(w.cgroup).toMatch(new RegExp(`^/fhirguard/${w.tier}/${w.id}-[0-9a-f]{6}$`));
    expect(readFileSync(`/proc/${w.pid}/cgroup`, 'utf8')).toContain(`0::${w.cgroup}\n`);
    const meta = await fhirRequest(w.socketPath, 'GET', '/metadata');
    expect(meta.status).toBe(200);
    expect(meta.json.resourceType).toBe('CapabilityStatement');
    // The proxy's group, and nobody else, can reach the socket.
    expect(statSync(w.socketPath).mode & 0o777).toBe(0o660);
    expect(statSync(w.socketPath).gid).toBe(resolveIdentities({}, false).proxy.gid);
  }
});

test('GET /enforcement: every mechanism active for every tier, with its profile', async () => {
  const e = await agent.client.enforcement();
  expect(e.degraded).toBe(false);
  expect(e.tiers.map((t) => t.tier)).toEqual(['read', 'write', 'ops']);
  for (const t of e.tiers) {
    expect(t.status).toBe('running');
    for (const m of ['seccomp', 'ebpf', 'mount_ro', 'netns'] as const) expect(t.mechanisms[m]).toMatchObject({ active: true });
    expect(t.profile?.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(t.profile?.serveAllowed).toBeGreaterThan(10);
    expect(t.profile!.serveAllowed).toBeLessThan(t.profile!.seccompAllowed);
  }
  expect(e.tiers[0].mechanisms.mount_ro.reason).toMatch(/read-only database/);
});

test('GET /counters: per-tier syscall counts from the eBPF maps grow with traffic; legitimate traffic violates nothing', async () => {
  const before = await agent.client.counters();
  expect(before.available).toBe(true);
  const ws = await agent.client.workers();
  const write = ws.find((w) => w.tier === 'write')!;
  const created = await fhirRequest(write.socketPath, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Counted' }] });
  expect(created.status).toBe(201);
  for (const r of ws.filter((w) => w.tier === 'read')) {
    expect((await fhirRequest(r.socketPath, 'GET', `/Patient/${created.json.id}`)).status).toBe(200);
  }
  const after = await agent.client.counters();
  const calls = (c: typeof after, tier: string, sc: string): number => c.tiers.find((t) => t.tier === tier)?.syscalls[sc]?.calls ?? 0;
  expect(calls(after, 'write', 'fsync') + calls(after, 'write', 'fdatasync')).toBeGreaterThan(calls(before, 'write', 'fsync') + calls(before, 'write', 'fdatasync'));
  expect(calls(after, 'read', 'pread64')).toBeGreaterThan(calls(before, 'read', 'pread64'));
  for (const t of after.tiers) {
    expect(t.action).toBe('enforce');
    expect(Object.entries(t.syscalls).filter(([, s]) => s.violations > 0)).toEqual([]);
  }
});

test('POST /audit: AuditEvents are appended to the trail in <state-dir>/audit; anything else is refused whole', async () => {
  const event = (id: string) => ({ resourceType: 'AuditEvent', id, type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [], source: { observer: { display: 'test' } } });
  await agent.client.postAudit(`${JSON.stringify(event('api-1'))}\n${JSON.stringify(event('api-2'))}\n`);
  await expect(agent.client.postAudit(`${JSON.stringify(event('api-3'))}\n{"resourceType":"Patient","id":"p"}\n`)).rejects.toThrow(/HTTP 400/);
  await expect(agent.client.postAudit('not json\n')).rejects.toThrow(/HTTP 400/);
  const trail = path.join(agent.stateDir, 'audit');
  const ids = await poll(
    'both AuditEvents in the trail',
    () => {
      const lines = existsSync(trail)
        ? readdirSync(trail)
            .filter((f) => f.endsWith('.jsonl'))
            .flatMap((f) => readFileSync(path.join(trail, f), 'utf8').split('\n').filter(Boolean))
        : [];
      const found = lines.map((l) => (JSON.parse(l) as { id: string }).id);
      return found.length >= 2 ? found : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  expect(ids).toEqual(['api-1', 'api-2']);
});

test('the API is read-only but for POST /audit, answers unknown paths with 404, and its socket is 0660', async () => {
  expect((await rawGet(agent.socketPath, '/workers', 'POST')).status).toBe(405);
  expect((await rawGet(agent.socketPath, '/nope')).status).toBe(404);
  expect(statSync(agent.socketPath).mode & 0o777).toBe(0o660);
});

test('a killed worker is reported crashed at once and restarted; the other read worker serves meanwhile', async () => {
  const events: WorkerInfo[] = [];
  const watch = agent.client.watch((w) => events.push(w));
  const ws = await waitWorkers(agent.client, allServing, 90_000, agent.log);
  const victim = ws.find((w) => w.id === 'read-0')!;
  const other = ws.find((w) => w.id === 'read-1')!;
  await closeClient(victim.socketPath);
  execFileSync('runc', ['--root', path.join(agent.stateDir, 'runc'), 'kill', 'read-0', 'KILL']);
  // Meanwhile the tier's other worker answers every request.
  const during: number[] = [];
  const until = waitWorkers(agent.client, (list) => list.find((w) => w.id === 'read-0')?.restarts === 1 && allServing(list));
  let done = false;
  void until.finally(() => (done = true));
  while (!done) during.push((await fhirRequest(other.socketPath, 'GET', '/metadata')).status);
  await until;
  watch.stop();
  expect(during.length).toBeGreaterThan(0);
  expect(during.every((s) => s === 200)).toBe(true);
  const seq = events.filter((e) => e.id === 'read-0').map((e) => e.state);
  expect(seq).toEqual(expect.arrayContaining(['crashed', 'starting', 'serving']));
  expect(seq.indexOf('crashed')).toBeLessThan(seq.lastIndexOf('serving'));
  const restarted = (await agent.client.workers()).find((w) => w.id === 'read-0')!;
  expect(restarted.lastExit?.code).toBe(137);
  expect(restarted.pid).not.toBe(victim.pid);
  expect((await fhirRequest(restarted.socketPath, 'GET', '/metadata')).status).toBe(200);
}, 120_000);

test('SIGTERM: the agent stops every worker (shutdown phase, SIGTERM) and exits 0, leaving no container', async () => {
  const exit = await agent.stop();
  expect(exit).toEqual({ code: 0, signal: null });
  const left = execFileSync('runc', ['--root', path.join(agent.stateDir, 'runc'), 'list', '-q'], { encoding: 'utf8' });
  expect(left.trim()).toBe('');
  expect(agent.log()).toMatch(/agent stopped/);
  expect(agent.log()).not.toMatch(/"level":(50|60)/);
});
