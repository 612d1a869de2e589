// The agent (root) running every tier's workers from the worker image instead of host bind
// mounts: the image is scanned against the fixture advisories and gated by the policy
// before it is unpacked; with the findings waived the workers start from the unpacked root
// (read-only, no shell, only the database and socket directories from the host) and serve
// GET /metadata; with a refusing policy no worker starts and the agent says why.

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildImage, type BuildResult } from '../../src/image/build';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { closeClient, fhirRequest } from '../helpers/worker-process';

const OSV = path.join(REPO, 'test', 'fixtures', 'osv');
const BASE_POLICY = readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8').replace(/\nsupplyChain:[\s\S]*$/, '\n');
const WAIVERS = [
  '    - id: FGTEST-2025-0001\n      reason: test waiver of the fastify fixture\n      expires: 2999-01-01\n',
  '    - id: FGTEST-2025-0003\n      reason: test waiver of the pino fixture\n      expires: 2999-01-01\n',
  '    - id: FGTEST-2025-0005\n      reason: test waiver of the glibc fixture\n      expires: 2999-01-01\n',
];

let dir: string;
let image: BuildResult;
let agent: AgentProcess | undefined;

function policyFile(name: string, waivers: string[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, `${BASE_POLICY}supplyChain:\n  scan:\n    failOn: high\n${waivers.length ? `  waivers:\n${waivers.join('')}` : ''}`);
  return file;
}

function mounts(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter(Boolean)) {
    const f = line.split(' ');
    out.set(f[4], `${f[3]} ${f[5]}`);
  }
  return out;
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: false });
  dir = shortTempDir('agimg');
  image = buildImage({ install: REPO, output: path.join(dir, 'layout'), tag: 'worker', epoch: 1700000000 });
}, 120_000);

afterEach(async () => {
  if (agent) await agent.stop();
  agent = undefined;
});

afterAll(() => {
  killLeftoverAgents();
  removeDir(dir);
});

test('workers run from the unpacked image and serve GET /metadata', async () => {
  agent = await startAgent(path.join(dir, 'ok'), ['--image', image.ref, '--advisories', OSV, '--policy', policyFile('waived.yaml', WAIVERS)]);
  const ws = await waitWorkers(agent.client, allServing, 120_000, agent.log);
  expect(ws.map((w) => w.tier).sort()).toEqual(['ops', 'read', 'read', 'write']);
  expect(agent.log()).toMatch(/passes the scan gate \(fail on high\): 3 waived/);

  const rootfs = path.join(agent.stateDir, 'images', image.digest.replace(':', '-'), 'rootfs');
  expect(existsSync(rootfs)).toBe(true);
  expect(readdirSync(path.join(agent.stateDir, 'images')).filter((d) => !d.startsWith('.'))).toEqual([image.digest.replace(':', '-')]);
  for (const w of ws) {
    const res = await fhirRequest(w.socketPath, 'GET', '/metadata');
    expect([w.id, res.status, (res.json as { resourceType?: string }).resourceType]).toEqual([w.id, 200, 'CapabilityStatement']);
    await closeClient(w.socketPath);

    // The container's root is the image's, read-only; the host's files are not there.
    const m = mounts(w.pid!);
    expect(m.get('/')).toMatch(new RegExp(`^${rootfs.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ro,`));
    expect(m.get('/data')?.split(' ')[1]).toMatch(w.tier === 'read' ? /^ro,/ : /^rw,/);
    expect(m.get('/run/fhirguard')?.split(' ')[1]).toMatch(/^rw,/);
    expect([...m.keys()].filter((k) => k.startsWith('/work') || k.startsWith('/usr') || k.startsWith('/lib'))).toEqual([]);
    const root = `/proc/${w.pid}/root`;
    expect(existsSync(`${root}/usr/bin/node`)).toBe(true);
    expect(existsSync(`${root}/bin/sh`)).toBe(false);
    expect(existsSync(`${root}/usr/bin/env`)).toBe(false);
    expect(readFileSync(`/proc/${w.pid}/cmdline`, 'utf8').split('\0')).toEqual(
      expect.arrayContaining(['/opt/fhirguard/bin/fhirguard', 'worker', '--db', '/data/fhir.db', 'unix:/run/fhirguard/worker.sock']),
    );
  }
  // A write through the write tier is read back through the read tier (one shared database).
  const write = ws.find((w) => w.tier === 'write')!;
  const read = ws.find((w) => w.tier === 'read')!;
  const created = await fhirRequest(write.socketPath, 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: 'Imaged' }] });
  expect(created.status).toBe(201);
  const id = (created.json as { id: string }).id;
  expect((await fhirRequest(read.socketPath, 'GET', `/Patient/${id}`)).status).toBe(200);
  for (const w of [write, read]) await closeClient(w.socketPath);
  expect((await agent.stop()).code).toBe(0);
}, 240_000);

test('a refusing gate stops every worker start before the image is unpacked', async () => {
  agent = await startAgent(path.join(dir, 'refused'), ['--image', image.ref, '--advisories', OSV, '--policy', policyFile('refuse.yaml', WAIVERS.slice(1))]);
  // Writers are refused; readers wait for a writer to create the database, so none starts.
  const ws = await waitWorkers(agent.client, (l) => l.length === 4 && l.filter((w) => w.tier !== 'read').every((w) => w.state === 'refused'), 60_000, agent.log);
  expect(ws.map((w) => [w.id, w.pid, w.state === 'refused' ? w.refusal?.reason : w.state])).toEqual([
    ['read-0', null, 'stopped'],
    ['read-1', null, 'stopped'],
    ['write-0', null, 'scan'],
    ['ops-0', null, 'scan'],
  ]);
  const log = agent.log();
  expect(log).toMatch(/refused: 1 finding at or above high severity without a waiver that holds/);
  expect(log).toMatch(/FGTEST-2025-0001 high: npm fastify/);
  expect(existsSync(path.join(agent.stateDir, 'images', image.digest.replace(':', '-')))).toBe(false);
  expect((await agent.stop()).code).toBe(0);
}, 120_000);

test('--image without --advisories: the agent refuses to start', async () => {
  await expect(startAgent(path.join(dir, 'noadv'), ['--image', image.ref])).rejects.toThrow(/--image needs --advisories/);
}, 60_000);
