// `fhirguard record --front-door` (root): the proxy recorded in its container as the agent runs
// it, under every tier's default workload, and proved on the held-out half with the new
// profiles enforced. The profiles it writes load, forbid what the front door must never do
// in serve, and the report says the proof ran clean.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadTierProfiles } from '../../src/enforce/tier-profiles';
import { FHIRGUARD, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';

const CORPUS = path.resolve(REPO, '..', 'shared', 'corpus', 'synthea');
let dir: string;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('record-door');
});

afterAll(() => removeDir(dir));

test('records, proves and writes the front door profiles', () => {
  const out = path.join(dir, 'out');
  const r = spawnSync(process.execPath, [FHIRGUARD, 'record', '--front-door', '--corpus', CORPUS, '--patients', '2', '--prove', '--out', out, '--state-dir', path.join(dir, 'state'), '--json'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
  const report = JSON.parse(r.stdout);
  expect(report.written).toBe(true);
  for (const run of [report.recording, report.proof]) {
    expect({ mode: run.mode, restarts: run.restarts, violations: run.violations }).toEqual({ mode: run.mode, restarts: 0, violations: {} });
    expect(run.requests).toBeGreaterThan(500);
    // Answered by the workers behind it, and refused at the door (403 policy, 400 and 415 malformed).
    for (const status of ['200', '201', '403', '400', '415']) expect({ status, seen: (run.statuses[status] ?? 0) > 0 }).toEqual({ status, seen: true });
  }
  expect(report.recording.sets.serve).toContain('accept4');
  const p = loadTierProfiles(out, 'proxy', true);
  expect(p.ebpf.noWriteOpens).toBe(true);
  for (const never of ['execve', 'execveat', 'fork', 'vfork', 'ptrace', 'mount', 'unshare', 'setns', 'bpf', 'init_module', 'kill', 'unlink', 'rename']) {
    expect({ never, serve: p.ebpf.serve.includes(never) }).toEqual({ never, serve: false });
  }
  expect(p.ebpf.serve).toEqual(expect.arrayContaining(['accept4', 'connect', 'socket']));
  expect(readFileSync(path.join(out, 'seccomp', 'proxy.json'), 'utf8')).toContain('Recorded by `fhirguard record`');
  expect(readFileSync(path.join(out, 'reports', 'proxy.md'), 'utf8')).toMatch(/enforce, synthea holdout half: \d+ requests .*0 restarts, violations: none/);
}, 320_000);
