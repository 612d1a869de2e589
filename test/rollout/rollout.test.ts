// Rolling updates under load, as root with the real agent, runc workers under seccomp and
// eBPF, and the real proxy over HTTP: a sustained mixed workload (creates, updates,
// transactions, reads, searches) runs through the proxy while `fhirguard rollout` replaces
// each tier's workers; not one request fails, every acknowledged write reads back and none is
// applied twice, and the proxy's pool (its /readyz) takes the new workers in before it lets an
// old one go. Broken profiles (one that stops the worker from starting, one that violates in
// the serve phase) are rolled back, again without a failed request, and the old workers keep
// serving and stay in the proxy's pool all along. So are rollouts that meet a worker restart:
// an old worker that crashes mid-rollout is retired with the others, a new one that dies
// during the bake rolls the tier back.

import { createHash } from 'node:crypto';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { waitWorkers, allServing } from '../helpers/agent-process';
import { REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { addresses, expectKept, expectSwitch, nextEvent, reapSystems, startSystem, tierOf, watchPool, type System } from './harness';
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
      const pool = watchPool(sys.proxy, tier);
      const run = await sys.rollout(['--tier', tier, '--profile', fresh, '--bake', '3s']);
      during[tier] = load.total() - n0;
      expect({ tier, code: run.code, stderr: run.stderr }).toEqual({ tier, code: 0, stderr: '' });
      expect(run.stdout).toMatch(new RegExp(`tier ${tier} rolled out`));
      const mine = tierOf(await sys.agent.client.workers(), tier);
      expect(mine.map((x) => x.id)).toEqual(tierOf(before, tier).map((x) => x.id.replace(`${tier}-`, `${tier}-g1-`)));
      expect(mine.every((x) => x.state === 'serving' && x.confinement === 'container')).toBe(true);
      // The proxy switched: old and new together, then only the new ones; never none.
      expectSwitch(await pool.stop(addresses(mine)), addresses(tierOf(before, tier)), addresses(mine));
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
    const writePool = watchPool(sys.proxy, 'write');
    const start = await sys.rollout(['--tier', 'write', '--profile', noListen, '--bake', '3s']);
    expect(start.code).toBe(1);
    expect(start.stderr).toMatch(/tier write NOT rolled out: write-g2-0 failed to start \(exit status \d+\)/);
    expect(start.stdout).toMatch(/rollback: /);
    expectKept(await writePool.stop(addresses(tierOf(before, 'write'))), addresses(tierOf(before, 'write')));

    const readPool = watchPool(sys.proxy, 'read');
    const serve = await sys.rollout(['--tier', 'read', '--profile', noAccept, '--bake', '3s']);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/tier read NOT rolled out: read-g2-\d .*accept4/);
    expect(serve.stderr).toMatch(/still serving: read-g1-0, read-g1-1/);
    expectKept(await readPool.stop(addresses(tierOf(before, 'read'))), addresses(tierOf(before, 'read')));
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

test('a rollout that meets a worker restart: an old worker that crashes is retired with the others; a new one killed during the bake rolls back; no failed request', async () => {
  const fresh = path.join(dir, 'profiles-v2');
  const old = tierOf(await waitWorkers(sys.agent.client, (ws) => ws.length === 4 && allServing(ws)), 'read');
  let current: ReturnType<typeof tierOf> = [];
  // Read traffic only meets these workers: a GET that meets a killed one is sent once more
  // to another member, so no request fails (a write in flight on a killed writer would).
  await underLoad(sys.proxy.fhirUrl, 3, async () => {
    // An old worker killed once the new ones are starting: its supervisor restarts it while
    // the rollout goes on, and the rollout retires it with the others.
    let since = sys.events.length;
    const pool = watchPool(sys.proxy, 'read');
    const running = sys.rollout(['--tier', 'read', '--profile', fresh, '--bake', '3s']);
    await nextEvent(sys, since, (w) => w.tier === 'read' && !old.some((o) => o.id === w.id) && w.state === 'starting');
    process.kill(old[0].pid!, 'SIGKILL');
    await nextEvent(sys, since, (w) => w.id === old[0].id && w.state === 'crashed');
    const run = await running;
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    current = tierOf(await sys.agent.client.workers(), 'read');
    expect(current.map((w) => [w.id.replace(/-g\d+-/, '-gN-'), w.state, w.restarts])).toEqual([
      ['read-gN-0', 'serving', 0],
      ['read-gN-1', 'serving', 0],
    ]);
    for (const o of old) expect(sys.events.filter((w) => w.id === o.id).pop()?.state).toBe('stopped');
    const seen = await pool.stop(addresses(current));
    expect({ empty: seen.filter((s) => s.length === 0), last: seen[seen.length - 1] }).toEqual({ empty: [], last: addresses(current) });

    // A new worker killed once it serves: the rollout rolls back, the current ones serve on.
    since = sys.events.length;
    const kept = watchPool(sys.proxy, 'read');
    const next = sys.rollout(['--tier', 'read', '--profile', fresh, '--bake', '3s']);
    const victim = await nextEvent(sys, since, (w) => /^read-g\d+-0$/.test(w.id) && !current.some((c) => c.id === w.id) && w.state === 'serving');
    process.kill(victim.pid!, 'SIGKILL');
    const back = await next;
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(new RegExp(`tier read NOT rolled out: ${victim.id} (stopped serving during the bake|failed to start) \\(killed by SIGKILL`));
    expect(back.stderr).toMatch(new RegExp(`still serving: ${current.map((w) => w.id).join(', ')}`));
    expectKept(await kept.stop(addresses(current)), addresses(current));
  });
  const after = tierOf(await sys.agent.client.workers(), 'read');
  expect(after.map((w) => [w.id, w.pid, w.state, w.restarts])).toEqual(current.map((w) => [w.id, w.pid, 'serving', 0]));
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
