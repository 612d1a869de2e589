// Rolling a new worker image, as root with the real agent running workers from an OCI image
// (scanned and gated before every start) and the real proxy: every tier moves from image v1
// to v2 under a sustained mixed workload with 0 failed requests and every acknowledged write
// readable; a new image the scan gate refuses is rolled back, the old workers serving on.

import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildImage, type BuildResult } from '../../src/image/build';
import { allServing, waitWorkers } from '../helpers/agent-process';
import { REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { addresses, expectKept, expectSwitch, reapSystems, startSystem, tierOf, watchPool, type System } from './harness';
import { underLoad } from './workload';

jest.setTimeout(240_000);

const OSV = path.join(REPO, 'test', 'fixtures', 'osv');
// The shipped policy with the fixture advisories' findings waived (as test/image does).
const POLICY_TEXT =
  readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8').replace(/\nsupplyChain:[\s\S]*$/, '\n') +
  'supplyChain:\n  scan:\n    failOn: high\n  waivers:\n' +
  ['0001', '0003', '0005'].map((n) => `    - id: FGTEST-2025-${n}\n      reason: test waiver of a fixture advisory\n      expires: 2999-01-01\n`).join('');

let dir: string;
let v1: BuildResult;
let v2: BuildResult;
let sys: System;

/** The image a worker's container root comes from (its unpacked digest directory). */
function imageOf(pid: number): string {
  const root = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[4] === '/');
  return /images\/(sha256-[0-9a-f]{64})\/rootfs/.exec(root?.[3] ?? '')?.[1]?.replace('-', ':') ?? `not from an image: ${root?.[3]}`;
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('rollimg');
  const layout = path.join(dir, 'layout');
  v1 = buildImage({ install: REPO, output: layout, tag: 'v1', epoch: 1700000000 });
  v2 = buildImage({ install: REPO, output: layout, tag: 'v2', epoch: 1700000001 });
  expect(v2.digest).not.toBe(v1.digest);
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY_TEXT);
  sys = await startSystem(dir, policyFile, POLICY_TEXT, ['--image', v1.ref, '--advisories', OSV]);
}, 240_000);

afterAll(async () => {
  await sys?.stop();
  await reapSystems();
  removeDir(dir);
});

test('every tier moves to image v2 under a sustained mixed workload: 0 failed requests, every acknowledged write readable', async () => {
  for (const w of await sys.agent.client.workers()) expect([w.id, imageOf(w.pid!)]).toEqual([w.id, v1.digest]);
  const { workload: w } = await underLoad(sys.proxy.fhirUrl, 3, async () => {
    for (const tier of ['read', 'write', 'ops']) {
      const old = tierOf(await sys.agent.client.workers(), tier);
      const pool = watchPool(sys.proxy, tier);
      const run = await sys.rollout(['--tier', tier, '--image', v2.ref, '--bake', '2s']);
      expect({ tier, code: run.code, stderr: run.stderr }).toEqual({ tier, code: 0, stderr: '' });
      expect(run.stdout).toContain(`image ${v2.ref}`);
      const mine = tierOf(await sys.agent.client.workers(), tier);
      for (const x of mine) expect([x.id, x.state, imageOf(x.pid!)]).toEqual([x.id, 'serving', v2.digest]);
      expectSwitch(await pool.stop(addresses(mine)), addresses(old), addresses(mine));
    }
  });
  for (const op of ['create', 'update', 'transaction', 'read', 'search']) expect(w.done[op]).toBeGreaterThan(3);
});

test('an image the scan gate refuses is rolled back with no failed request; the old workers keep serving', async () => {
  const before = await waitWorkers(sys.agent.client, (ws) => ws.length === 4 && allServing(ws));
  // Another advisory database: a high finding on fastify that the policy does not waive.
  const advisories = path.join(dir, 'osv-new');
  mkdirSync(advisories);
  cpSync(OSV, advisories, { recursive: true });
  const fixture = JSON.parse(readFileSync(path.join(OSV, 'FGTEST-2025-0001.json'), 'utf8'));
  writeFileSync(path.join(advisories, 'FGTEST-2026-0100.json'), JSON.stringify({ ...fixture, id: 'FGTEST-2026-0100', aliases: [] }));

  const pool = watchPool(sys.proxy, 'read');
  const { result: run } = await underLoad(sys.proxy.fhirUrl, 2, () => sys.rollout(['--tier', 'read', '--image', v1.ref, '--advisories', advisories, '--bake', '2s']));
  expectKept(await pool.stop(), addresses(tierOf(before, 'read')));
  expect(run.code).toBe(1);
  expect(run.stderr).toMatch(/tier read NOT rolled out: read-g2-\d was refused at start: image \S+:v1 \(sha256:[0-9a-f]{64}\) refused: 1 finding at or above high severity[\s\S]*FGTEST-2026-0100/);
  const after = await sys.agent.client.workers();
  expect(after.map((x) => [x.id, x.pid, x.state])).toEqual(before.map((x) => [x.id, x.pid, 'serving']));
  for (const x of after) expect(imageOf(x.pid!)).toBe(v2.digest);
});
