// Rollouts through the signature check, as root with the real agent started with
// --trusted-keys and the real proxy: new workers start only from artifacts with a valid
// signed statement, like every other start. An unsigned new profile, and one edited after it
// was signed, are refused at start and rolled back with no failed request, the old workers
// serving on; the same profile signed rolls out and the tier reports the new statement.

import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { allServing, waitWorkers } from '../helpers/agent-process';
import { FHIRGUARD, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { addresses, expectKept, expectSwitch, reapSystems, startSystem, tierOf, watchPool, type System } from './harness';
import { underLoad as load } from './workload';

jest.setTimeout(240_000);

const POLICY = path.join(REPO, 'profiles', 'policy.yaml');
let dir: string;
let key: string;
let sys: System;

function sign(profiles: string, attestations: string, tiers: string[]): void {
  execFileSync(FHIRGUARD, ['sign', '--key', key, '--policy', POLICY, '--profiles', profiles, '--attestations', attestations, ...tiers.flatMap((t) => ['--tier', t])], { stdio: 'pipe' });
}

/** A copy of the shipped seccomp and eBPF profiles with another digest for `tier`. */
function newProfiles(name: string, tier: string): string {
  const out = path.join(dir, name);
  for (const kind of ['seccomp', 'ebpf']) cpSync(path.join(REPO, 'profiles', kind), path.join(out, kind), { recursive: true });
  const f = path.join(out, 'ebpf', `${tier}.json`);
  const json = JSON.parse(readFileSync(f, 'utf8'));
  json.comment = [...(json.comment ?? []), `${name}: reviewed change`];
  writeFileSync(f, JSON.stringify(json, null, 2) + '\n');
  return out;
}

const underLoad = async <T>(fn: () => Promise<T>): Promise<T> => (await load(sys.proxy.fhirUrl, 2, fn)).result;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('rolltrust');
  execFileSync(FHIRGUARD, ['keygen', '--out', dir, '--name', 'ops-key'], { stdio: 'pipe' });
  key = path.join(dir, 'ops-key.key');
  const attestations = path.join(dir, 'attestations');
  sign(path.join(REPO, 'profiles'), attestations, ['read', 'write', 'ops']);
  sys = await startSystem(dir, POLICY, readFileSync(POLICY, 'utf8'), ['--trusted-keys', path.join(dir, 'ops-key.pub'), '--attestations', attestations]);
}, 240_000);

afterAll(async () => {
  await sys?.stop();
  await reapSystems();
  removeDir(dir);
});

test('an unsigned new profile is refused at start and rolled back; the old workers keep serving', async () => {
  const before = await waitWorkers(sys.agent.client, (ws) => ws.length === 4 && allServing(ws));
  const unsigned = newProfiles('unsigned', 'read');
  const pool = watchPool(sys.proxy, 'read');
  const run = await underLoad(() => sys.rollout(['--tier', 'read', '--profile', unsigned, '--bake', '2s']));
  expectKept(await pool.stop(), addresses(tierOf(before, 'read')));
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/tier read NOT rolled out: read-g1-\d was refused at start: tier read is not signed: no \S+\/unsigned\/attestations\/read\.dsse\.json/);
  expect((await sys.agent.client.workers()).map((w) => [w.id, w.pid, w.state])).toEqual(before.map((w) => [w.id, w.pid, 'serving']));
});

test('a profile edited after it was signed is refused; signed as it is, it rolls out', async () => {
  const before = await waitWorkers(sys.agent.client, (ws) => ws.length === 4 && allServing(ws));
  const next = newProfiles('next', 'write');
  sign(next, path.join(next, 'attestations'), ['write']);
  const f = path.join(next, 'seccomp', 'write.json');
  const original = readFileSync(f);
  writeFileSync(f, original.toString().replace(/\n$/, ' \n'));
  const keep = watchPool(sys.proxy, 'write');
  const edited = await underLoad(() => sys.rollout(['--tier', 'write', '--profile', next, '--bake', '2s']));
  expectKept(await keep.stop(), addresses(tierOf(before, 'write')));
  expect(edited.code).toBe(1);
  expect(edited.stderr).toMatch(/tier write NOT rolled out: write-g\d-0 was refused at start: .*seccomp/);
  expect((await sys.agent.client.workers()).map((w) => [w.id, w.pid, w.state])).toEqual(before.map((w) => [w.id, w.pid, 'serving']));

  writeFileSync(f, original);
  const sw = watchPool(sys.proxy, 'write');
  const ok = await underLoad(() => sys.rollout(['--tier', 'write', '--profile', next, '--bake', '2s']));
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
  expect(ok.stdout).toContain(`signed statements in ${path.join(next, 'attestations')}`);
  const mine = tierOf(await sys.agent.client.workers(), 'write');
  expect(mine.map((w) => [w.id, w.state])).toEqual([['write-g2-0', 'serving']]);
  expectSwitch(await sw.stop(addresses(mine)), addresses(tierOf(before, 'write')), addresses(mine));
  const t = (await sys.agent.client.enforcement()).tiers.find((x) => x.tier === 'write')!;
  expect(t.profile?.seccompFile).toBe(f);
  expect(t.trust).toMatchObject({ status: 'verified' });
});
