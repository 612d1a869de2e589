// Degraded mode, for real: an agent that cannot confine (no runc; not root) still runs the
// workers as plain processes, says so loudly in its log and on GET /enforcement, and
// refuses a tier whose policy says `enforcement: required`.

import { resolveIdentities } from '../../src/enforce/identities';
import { chmodSync, chownSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkerInfo } from '../../src/agent-api/client';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { REPO, removeDir, shortTempDir } from '../helpers/confined';
import { closeClient, fhirRequest } from '../helpers/worker-process';

const started: AgentProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const a of started) {
    for (const w of await a.client.workers().catch(() => [] as WorkerInfo[])) await closeClient(w.socketPath);
    await a.stop();
  }
  killLeftoverAgents();
  dirs.forEach(removeDir);
});

/** The shipped policy with one read worker, and `enforcement: required` on the ops tier. */
function policyWithRequiredOps(dir: string): string {
  const shipped = readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8');
  const text = shipped.replace('workers: 2 ', 'workers: 1 ').replace('# enforcement: required', 'enforcement: required');
  expect(text).toMatch(/^\s+enforcement: required/m);
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

function uidOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'))!;
  return line.split(/\s+/)[1];
}

test("no runc: plain-process workers (as the workers' user), a loud log, enforcement reported inactive, the required tier refused", async () => {
  if (process.getuid?.() !== 0) throw new Error('this test runs the agent as root with a missing runc: run the suite as root');
  const dir = shortTempDir('degraded');
  dirs.push(dir);
  const args = ['--policy', policyWithRequiredOps(dir), '--runc', '/nonexistent/runc'];
  // Plain processes see the host's directories: a database the workers' user cannot reach is
  // an error at start, not a crash loop.
  await expect(startAgent(dir, args)).rejects.toThrow(/workers \(uid \d+\) cannot reach .*fhir\.db: .* is not searchable/);
  chmodSync(dir, 0o755);
  const agent = await startAgent(dir, args);
  started.push(agent);
  const ws = await waitWorkers(agent.client, allServing, 90_000, agent.log);

  expect(agent.log()).toMatch(/ENFORCEMENT DEGRADED: workers run as plain processes.*runc not found at \/nonexistent\/runc/);
  expect(agent.log()).toMatch(/tier ops REFUSED: enforcement: required/);

  // ops is refused: no worker; read and write run as plain processes and serve FHIR.
  expect(ws.map((w) => w.id).sort()).toEqual(['read-0', 'write-0']);
  for (const w of ws) {
    expect(w.confinement).toBe('process');
    // Each tier class as its own identity, as in containers.
    const ids = resolveIdentities({}, false);
    expect(uidOf(w.pid!)).toBe(String(w.tier === 'read' ? ids.reader.uid : ids.writer.uid));
    expect((await fhirRequest(w.socketPath, 'GET', '/metadata')).status).toBe(200);
    // Reachable by the proxy's group alone.
    expect(statSync(w.socketPath).mode & 0o777).toBe(0o660);
    expect(statSync(w.socketPath).gid).toBe(ids.proxy.gid);
  }
  const write = ws.find((w) => w.tier === 'write')!;
  expect((await fhirRequest(write.socketPath, 'POST', '/Patient', { resourceType: 'Patient' })).status).toBe(201);

  const e = await agent.client.enforcement();
  expect(e.degraded).toBe(true);
  const byTier = Object.fromEntries(e.tiers.map((t) => [t.tier, t]));
  expect(byTier.ops).toMatchObject({ status: 'refused', confinement: 'none' });
  expect(byTier.ops.reason).toMatch(/runc not found/);
  for (const t of ['read', 'write']) {
    expect(byTier[t]).toMatchObject({ status: 'running', confinement: 'process' });
    for (const m of ['seccomp', 'ebpf', 'mount_ro', 'netns'] as const) {
      expect(byTier[t].mechanisms[m].active).toBe(false);
      expect(byTier[t].mechanisms[m].reason).toMatch(/plain processes: .*runc not found/);
    }
  }
  const c = await agent.client.counters();
  expect(c.available).toBe(false);
}, 180_000);

test('not root: the agent runs degraded as its own user and says why', async () => {
  const dir = shortTempDir('nonroot');
  dirs.push(dir);
  chownSync(dir, 65534, 65534);
  const agent = await startAgent(dir, ['--policy', policyWithRequiredOps(dir)], { uid: 65534, gid: 65534 });
  started.push(agent);
  const ws = await waitWorkers(agent.client, allServing, 90_000, agent.log);
  expect(agent.log()).toMatch(/ENFORCEMENT DEGRADED.*not root \(uid 65534\)/);
  expect(ws.map((w) => w.id).sort()).toEqual(['read-0', 'write-0']);
  for (const w of ws) {
    expect(w.confinement).toBe('process');
    expect(uidOf(w.pid!)).toBe('65534');
    expect((await fhirRequest(w.socketPath, 'GET', '/metadata')).status).toBe(200);
  }
  const e = await agent.client.enforcement();
  expect(e.tiers.find((t) => t.tier === 'ops')).toMatchObject({ status: 'refused' });
  expect(e.tiers.find((t) => t.tier === 'read')!.mechanisms.seccomp.reason).toMatch(/not root/);
}, 180_000);
