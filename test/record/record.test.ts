// `fhirguard record --prove` on this machine (root, real runc, real kernel, the real proxy):
// every tier of the shipped policy recorded on a reduced Synthea workload (one patient per
// half; FHIRGUARD_SOAK=1: every patient, two runs), then the proof of completeness: the
// held-out half, in another order, replayed with the recorded profiles enforced, with no
// violation, no failed request caused by the profiles, a clean stop, and nothing needed that
// the recording did not have. Also: the proof fails when a profile misses a call.

import { sameIdentity } from '../../src/enforce/identities';
import { spawn } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { loadEbpfProfile } from '../../src/enforce/ebpf-profile';
import { openEnforcement } from '../../src/enforce/open';
import { stagedInstallDir } from '../../src/enforce/layout';
import { stageInstall } from '../../src/install/stage';
import { DANGEROUS_SYSCALLS } from '../../src/profile/dangerous';
import { loadDataset } from '../../src/record/corpus';
import { defaultWorkload } from '../../src/record/default-workloads';
import { provingSeccomp } from '../../src/record/recorder';
import type { TierReport } from '../../src/record/report';
import { runTier } from '../../src/record/tier-run';
import { allowedSyscalls, loadSeccompProfile } from '../../src/enforce/seccomp';
import { loadPolicy } from '../../src/policy';
import { FHIRGUARD, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';

const SOAK = process.env.FHIRGUARD_SOAK === '1';
const CORPUS = path.resolve(REPO, '..', 'shared', 'corpus', 'synthea');
const policy = loadPolicy(path.join(REPO, 'profiles', 'policy.yaml'));

let dir: string;
let out: string;
let exitCode: number | null;
let stderr = '';
let tiers: TierReport[];

function record(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FHIRGUARD, 'record', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let so = '';
    let se = '';
    child.stdout.on('data', (d: Buffer) => (so += d.toString()));
    child.stderr.on('data', (d: Buffer) => (se += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout: so, stderr: se }));
  });
}

const tier = (name: string): TierReport => tiers.find((t) => t.tier === name)!;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('record');
  // The state directory is in it: the plain workers (65534) run from the install staged there.
  chmodSync(dir, 0o711);
  out = path.join(dir, 'out');
  const r = await record(['--prove', '--out', out, '--state-dir', path.join(dir, 'state'), '--corpus', CORPUS, '--json', ...(SOAK ? ['--runs', '2'] : ['--patients', '1'])]);
  exitCode = r.code;
  stderr = r.stderr;
  tiers = (JSON.parse(r.stdout) as { tiers: TierReport[] }).tiers;
}, 1_200_000);

afterAll(() => removeDir(dir));

test('records every tier of the shipped policy and writes its profiles and reports', () => {
  // On failure the command's own account is what to read.
  expect(exitCode === 0 ? '' : stderr.slice(-3000)).toBe('');
  expect(tiers.map((t) => t.tier)).toEqual(policy.tiers.map((t) => t.name));
  for (const t of tiers) {
    expect(loadSeccompProfile(path.join(out, 'seccomp', `${t.tier}.json`)).defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(loadEbpfProfile(path.join(out, 'ebpf', `${t.tier}.json`)).serve.length).toBe(t.serve.allowed);
    expect(JSON.parse(readFileSync(path.join(out, 'reports', `${t.tier}.json`), 'utf8')).tier).toBe(t.tier);
    expect(readFileSync(path.join(out, 'reports', `${t.tier}.md`), 'utf8')).toMatch(/Proof of completeness: passed/);
  }
});

test('proof of completeness: the held-out workload passes with the recorded profiles enforced', () => {
  for (const t of tiers) {
    const p = t.proof!;
    expect({ tier: t.tier, violations: p.violations, newFailures: p.newFailures, exit: p.exit.code, missing: p.missing }).toEqual({
      tier: t.tier,
      violations: {},
      newFailures: [],
      exit: 0,
      missing: { seccomp: [], serve: [] },
    });
    expect(p.passed).toBe(true);
    expect(p.requests).toBeGreaterThan(20);
    // Whatever failed in the replay failed the same way while recording, every call allowed:
    // refusals made before the worker (the proxy's), never the profiles'.
    for (const f of [...p.sharedFailures, ...p.pagesRefused]) expect(f.status).toBe(400);
    // The replay used the other half of the patients.
    expect(p.workload).toMatch(/holdout half/);
  }
});

test("runc's own steps in the container were recorded, and kept out of the profile", () => {
  for (const t of tiers) {
    const allowed = allowedSyscalls(loadSeccompProfile(path.join(out, 'seccomp', `${t.tier}.json`)));
    for (const n of ['mount', 'pivot_root', 'sethostname']) {
      expect(t.runtimeOnly.names).toContain(n);
      expect(allowed).not.toContain(n);
    }
    // The worker's exec happened under the filter: runc's execve of node is in boot, not serve.
    expect(t.sets.bootSeccomp.names).toContain('execve');
    expect(t.sets.serve.names).not.toContain('execve');
    // Shutdown was recorded apart: the process ends there.
    expect(t.sets.shutdown.names).toContain('exit_group');
    expect(t.sets.serve.names).not.toContain('exit_group');
  }
});

test('attack-surface targets: read serve <= 45 and seccomp <= 90; no dangerous call in any serve phase', () => {
  expect(tier('read').serve.allowed).toBeLessThanOrEqual(45);
  expect(tier('read').seccomp.allowed).toBeLessThanOrEqual(90);
  for (const t of tiers) {
    expect([t.tier, t.serve.dangerous]).toEqual([t.tier, []]);
    for (const n of loadEbpfProfile(path.join(out, 'ebpf', `${t.tier}.json`)).serve) expect(DANGEROUS_SYSCALLS).not.toHaveProperty(n);
    expect(t.seccomp.allowed).toBeLessThan(t.baseline.dockerDefaultAllowed);
  }
});

test("the template's argument filters and refusals are kept", () => {
  const read = loadSeccompProfile(path.join(out, 'seccomp', 'read.json'));
  const ruleFor = (name: string): unknown[] => read.syscalls.filter((r) => r.names.includes(name)).map((r) => ({ action: r.action, args: r.args }));
  expect(ruleFor('openat')).toContainEqual({ action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 1603, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
  expect(ruleFor('clone')).toEqual([{ action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 65536, valueTwo: 65536, op: 'SCMP_CMP_MASKED_EQ' }] }]);
  expect(ruleFor('socket')).toEqual([{ action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, valueTwo: 0, op: 'SCMP_CMP_EQ' }] }]);
  expect(ruleFor('clone3')).toEqual([{ action: 'SCMP_ACT_ERRNO', args: undefined }]);
  expect(ruleFor('unlink')).toEqual([{ action: 'SCMP_ACT_ERRNO', args: undefined }]);
  expect(loadEbpfProfile(path.join(out, 'ebpf', 'read.json'))).toMatchObject({ noWriteOpens: true, egress: [] });
  expect(JSON.stringify(read.comment)).not.toMatch(/hand-written/i);
});

test('recording time is reported per tier', () => {
  for (const t of tiers) {
    expect(t.timing.recordMs).toBeGreaterThan(0);
    expect(t.timing.runs).toHaveLength(SOAK ? 2 : 1);
    expect(t.timing.proofMs).toBeGreaterThan(0);
  }
});

test('the proof fails when a profile misses a call the held-out workload needs', async () => {
  // Its plain workers and crashing writer run as 65534: from the install staged as record stages it.
  const stateDir = path.join(dir, 'state');
  const { ctx } = await openEnforcement({ stateDir, install: stageInstall(REPO, stagedInstallDir(stateDir)).root, identities: sameIdentity({ uid: 65534, gid: 65534 }) });
  const seccomp = loadSeccompProfile(path.join(out, 'seccomp', 'read.json'));
  const ebpf = loadEbpfProfile(path.join(out, 'ebpf', 'read.json'));
  // Reading the database while serving needs pread64: without it the first read kills the worker.
  expect(ebpf.serve).toContain('pread64');
  const holdout = defaultWorkload(loadDataset(CORPUS, 'holdout', { patientsPerHalf: 1 }), policy, 'read');
  const r = await runTier({
    ctx: ctx!,
    policy,
    tier: 'read',
    workload: { ...holdout, steps: holdout.steps.slice(0, 30), background: [] },
    seccomp: provingSeccomp(seccomp),
    bpf: { allow: ebpf.serve.filter((n) => n !== 'pread64'), action: 'enforce', noWriteOpens: true, egress: [], phase: 'boot', record: true },
    workerLogLevel: 'info',
    log: pino({ level: 'silent' }),
    idleMs: 0,
  });
  expect(r.counters.syscalls.pread64?.violations).toBeGreaterThan(0);
  expect(r.workload.failures.length).toBeGreaterThan(0);
  expect(r.exit.code).not.toBe(0);
}, 300_000);
