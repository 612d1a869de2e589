// `fhirguard record --server` (root): HAPI FHIR's two tiers recorded in their containers as
// the agent runs them, through the real proxy, with PostgreSQL restarted under them while
// requests go on, then proved on the held-out half with the new profiles enforced. The
// profiles it writes load, forbid what a FHIR server must never do once serving, and the
// report says the proof ran clean. The real JVM, HAPI and PostgreSQL.

import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { loadTierProfiles } from '../../src/enforce/tier-profiles';
import { FHIRGUARD, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { HAPI_DIR, HAPI_TEMPLATES, hapiJar, hapiWorld, type HapiWorld } from '../helpers/hapi';

const CORPUS = path.resolve(REPO, '..', 'shared', 'corpus', 'synthea');
let dir: string;
let world: HapiWorld;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('record-server');
  chmodSync(dir, 0o711);
  world = await hapiWorld(dir, hapiJar());
}, 900_000);

afterAll(() => {
  world?.stop();
  removeDir(dir);
});

test('records both HAPI tiers, restarts PostgreSQL under them, proves and writes their profiles', () => {
  const out = path.join(dir, 'out');
  const env = `FHIRGUARD_HAPI_STATE=${world.state} FHIRGUARD_HAPI_PG_PORT=${world.port}`;
  const restart = `${env} ${path.join(HAPI_DIR, 'postgres.sh')} stop && sleep 2 && ${env} ${path.join(HAPI_DIR, 'postgres.sh')} start`;
  const r = spawnSync(
    process.execPath,
    [
      FHIRGUARD,
      'record',
      '--server',
      '--policy',
      world.policyFile,
      '--profiles',
      HAPI_TEMPLATES,
      '--corpus',
      CORPUS,
      '--patients',
      '1',
      '--prove',
      '--restart-db',
      restart,
      '--out',
      out,
      '--state-dir',
      path.join(dir, 'state'),
      '--json',
    ],
    { encoding: 'utf8', timeout: 900_000 },
  );
  expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr.slice(-3000) }).toEqual({ status: 0, stderr: '' });
  const report = JSON.parse(r.stdout);
  expect(report.tiers.map((t: { tier: string; written: boolean }) => [t.tier, t.written])).toEqual([
    ['read', true],
    ['write', true],
  ]);
  for (const run of [report.recording, report.proof]) {
    expect({ mode: run.mode, restarts: run.restarts, violations: run.violations }).toEqual({ mode: run.mode, restarts: { read: 0, write: 0 }, violations: { read: {}, write: {} } });
    expect(run.requests).toBeGreaterThan(300);
    // The database really went away under them, and they answered again.
    expect(run.afterDbRestart.requests).toBeGreaterThan(0);
    expect(run.afterDbRestart.recoveredMs).toBeLessThan(120_000);
  }
  // The JVM's start is the boot phase; serving, it accepts, reads, writes and talks to PostgreSQL.
  expect(report.recording.sets.read.bootSeccomp).toEqual(expect.arrayContaining(['execve', 'clone', 'mmap', 'openat']));
  expect(report.recording.sets.read.serve).toEqual(expect.arrayContaining(['accept', 'connect', 'futex']));
  for (const tier of ['read', 'write']) {
    const p = loadTierProfiles(out, tier, tier === 'read');
    expect(p.seccomp.defaultAction).toBe('SCMP_ACT_KILL_PROCESS');
    expect(p.ebpf.noWriteOpens).toBe(tier === 'read');
    for (const never of ['execve', 'execveat', 'fork', 'vfork', 'ptrace', 'mount', 'unshare', 'setns', 'bpf', 'init_module', 'kill', 'unlink', 'rename', 'chmod']) {
      expect({ tier, never, serve: p.ebpf.serve.includes(never) }).toEqual({ tier, never, serve: false });
    }
    for (const never of ['ptrace', 'mount', 'unshare', 'setns', 'bpf', 'init_module', 'process_vm_readv']) {
      expect({ tier, never, seccomp: p.seccompAllowed.includes(never) }).toEqual({ tier, never, seccomp: false });
    }
  }
}, 900_000);
