// Rolling updates under load, as root with the real agent, runc workers under seccomp and
// eBPF, and the real proxy over HTTP: a sustained mixed workload (creates, updates,
// transactions, reads, searches) runs through the proxy while `fhirguard rollout` replaces
// each tier's workers; not one request fails and every acknowledged write reads back. Broken
// profiles (one that stops the worker from starting, one that violates in the serve phase)
// are rolled back, again without a failed request, and the old workers keep serving.

import { createHash } from 'node:crypto';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitWorkers, allServing } from '../helpers/agent-process';
import { REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { reapSystems, startSystem, tierOf, type System } from './harness';
import { underLoad } from './workload';

jest.setTimeout(240_000);

const POLICY = path.join(REPO, 'profiles', 'policy.yaml');
let dir: string;
let sys: System;

/** A copy of the shipped profiles, changed by `edit` (tier, kind, parsed JSON). */
function profilesCopy(name: string, edit: (tier: string, kind: 'seccomp' | 'ebpf', json: any) => void = () => undefined): string {
  const out = path.join(dir, name);
  for (const kind of ['seccomp', 'ebpf'] as const) {
    cpSync(path.join(REPO, 'profiles', kind), path.join(out, kind), { recursive: true });
    for (const tier of ['read', 'write', 'ops']) {
      const f = path.join(out, kind, `${tier}.json`);
      const json = JSON.parse(readFileSync(f, 'utf8'));
      edit(tier, kind, json);
      writeFileSync(f, JSON.stringify(json, null, 2) + '\n');
    }
  }
  return out;
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('rollout');
  sys = await startSystem(dir, POLICY, readFileSync(POLICY, 'utf8'));
}, 240_000);

afterAll(async () => {
  await sys?.stop();
  await reapSystems();
  removeDir(dir);
});

test('the control socket is root-only: mode 0600 in a 0700 directory of the state dir', () => {
  const sock = path.join(sys.agent.stateDir, 'control', 'agent.sock');
  expect(statSync(sock).isSocket()).toBe(true);
  expect(statSync(sock).mode & 0o777).toBe(0o600);
  expect(statSync(path.dirname(sock)).mode & 0o777).toBe(0o700);
  expect(statSync(sock).uid).toBe(0);
});

test('every tier rolled out under a sustained mixed workload: 0 failed requests, every acknowledged write readable', async () => {
  const fresh = profilesCopy('profiles-v2', (tier, kind, json) => {
    // Same rules, another digest: what an operator's reviewed profile change looks like.
    if (kind === 'ebpf') json.comment = [...(json.comment ?? []), `v2 of the ${tier} profile`];
  });
  const before = await sys.agent.client.workers();
  const during: Record<string, number> = {};
  // underLoad checks the workload: no failed request, every acknowledged write readable.
  const { workload: w } = await underLoad(sys.proxy.fhirUrl, 3, async (load) => {
    for (const tier of ['read', 'write', 'ops']) {
      const n0 = load.total();
      const run = await sys.rollout(['--tier', tier, '--profile', fresh, '--bake', '3s']);
      during[tier] = load.total() - n0;
      expect({ tier, code: run.code, stderr: run.stderr }).toEqual({ tier, code: 0, stderr: '' });
      expect(run.stdout).toMatch(new RegExp(`tier ${tier} rolled out`));
      const mine = tierOf(await sys.agent.client.workers(), tier);
      expect(mine.map((x) => x.id)).toEqual(tierOf(before, tier).map((x) => x.id.replace(`${tier}-`, `${tier}-g1-`)));
      expect(mine.every((x) => x.state === 'serving' && x.confinement === 'container')).toBe(true);
    }
  });
  // The workload really ran through every rollout, with writes and reads.
  for (const tier of ['read', 'write', 'ops']) expect(during[tier]).toBeGreaterThan(10);
  for (const op of ['create', 'update', 'transaction', 'read', 'search']) expect(w.done[op]).toBeGreaterThan(5);

  // Each tier now runs the new profiles, as GET /enforcement says.
  const e = await sys.agent.client.enforcement();
  for (const tier of ['read', 'write', 'ops']) {
    const p = e.tiers.find((t) => t.tier === tier)!.profile!;
    const digest = createHash('sha256')
      .update(readFileSync(path.join(fresh, 'seccomp', `${tier}.json`)))
      .update(readFileSync(path.join(fresh, 'ebpf', `${tier}.json`)))
      .digest('hex');
    expect({ tier, digest: p.digest, file: p.ebpfFile }).toEqual({ tier, digest, file: path.join(fresh, 'ebpf', `${tier}.json`) });
  }
  // The order the proxy saw: a new worker serves before an old one drains, and an old one
  // drains before it stops.
  for (const old of before) {
    const seq = sys.events.filter((x) => x.id === old.id).map((x) => x.state);
    expect(seq.slice(-2)).toEqual(['draining', 'stopped']);
    const drainedAt = sys.events.findIndex((x) => x.id === old.id && x.state === 'draining');
    const servedAt = sys.events.findIndex((x) => x.id === old.id.replace(`${old.tier}-`, `${old.tier}-g1-`) && x.state === 'serving');
    expect(servedAt).toBeGreaterThanOrEqual(0);
    expect(servedAt).toBeLessThan(drainedAt);
  }
});

test('broken profiles roll back: one that stops workers at start, one that violates in the serve phase; no failed request, the old workers keep serving', async () => {
  const before = await waitWorkers(sys.agent.client, (ws) => ws.length === 4 && allServing(ws));
  // write: no listen(2) in seccomp, so the worker cannot open its socket and exits at start.
  const noListen = profilesCopy('profiles-nolisten', (tier, kind, json) => {
    if (kind === 'seccomp') for (const rule of json.syscalls) rule.names = rule.names.filter((n: string) => n !== 'listen');
  });
  // read: no accept4 in the serve phase: the first connection after the switch is a violation.
  const noAccept = profilesCopy('profiles-noaccept', (tier, kind, json) => {
    if (kind === 'ebpf') json.serve = json.serve.filter((n: string) => n !== 'accept4');
  });
  await underLoad(sys.proxy.fhirUrl, 3, async () => {
    const start = await sys.rollout(['--tier', 'write', '--profile', noListen, '--bake', '3s']);
    expect(start.code).toBe(1);
    expect(start.stderr).toMatch(/tier write NOT rolled out: write-g2-0 failed to start \(exit status \d+\)/);
    expect(start.stdout).toMatch(/rollback: /);

    const serve = await sys.rollout(['--tier', 'read', '--profile', noAccept, '--bake', '3s']);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/tier read NOT rolled out: read-g2-\d .*accept4/);
    expect(serve.stderr).toMatch(/still serving: read-g1-0, read-g1-1/);
  });

  // The same workers as before, never restarted, serving; the new ones are gone.
  const after = await sys.agent.client.workers();
  expect(after.map((x) => [x.id, x.pid, x.state, x.restarts])).toEqual(before.map((x) => [x.id, x.pid, 'serving', x.restarts]));
  const e = await sys.agent.client.enforcement();
  expect(e.tiers.find((t) => t.tier === 'read')!.profile!.ebpfFile).toBe(path.join(dir, 'profiles-v2', 'ebpf', 'read.json'));
  // The violation is on the tier's books.
  const c = await sys.agent.client.counters();
  expect(c.tiers.find((t) => t.tier === 'read')!.syscalls.accept4?.violations).toBeGreaterThan(0);
});

test('usage errors and unknown tiers are refused without touching any worker', async () => {
  const before = (await sys.agent.client.workers()).map((x) => [x.id, x.pid]);
  expect((await sys.rollout([])).code).toBe(2);
  expect((await sys.rollout(['--tier', 'read', '--bake', 'soon'])).code).toBe(2);
  const unknown = await sys.rollout(['--tier', 'nope']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toMatch(/no tier nope in the policy/);
  const missing = await sys.rollout(['--tier', 'read', '--profile', path.join(dir, 'no-such-dir')]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/cannot prepare the new workers/);
  expect((await sys.agent.client.workers()).map((x) => [x.id, x.pid])).toEqual(before);
});
