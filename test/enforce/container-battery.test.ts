// The attack battery, run by `fhirguard exec` inside real containers of each tier of the
// shipped policy (real runc, real seccomp, real eBPF): every attack is refused where the
// tier's profiles say so, in boot phase by seccomp and the mounts, in serve phase also by
// the eBPF policy (killed, and counted), and audit mode counts without blocking.

import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildAttack, outcomes, removeDir, requireEnforcement, runExec, shortTempDir } from '../helpers/confined';

let dir: string;
let attack: string;
let stateDir: string;
let dataDir: string;
let db: string;

const TIERS = ['read', 'write', 'ops'] as const;

function execArgs(tier: string, extra: string[] = []): string[] {
  return ['--tier', tier, '--state-dir', stateDir, '--db', db, ...extra, '--'];
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('battery');
  attack = buildAttack(dir);
  stateDir = path.join(dir, 'state');
  dataDir = path.join(dir, 'data');
  db = path.join(dataDir, 'fhir.db');
  mkdirSync(dataDir, { recursive: true });
  const d = new Database(db);
  d.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
  d.close();
  for (const t of TIERS) {
    writeFileSync(path.join(dataDir, `victim-${t}`), 'x');
    writeFileSync(path.join(dataDir, `victim2-${t}`), 'x');
  }
});

afterAll(() => removeDir(dir));

// What the kernel answers in boot phase (seccomp, mounts, no capabilities, empty netns).
// exec-sh: ENOENT, not EPERM: seccomp must allow execve for the container to start at all,
// and the root holds no shell.
const BOOT_EXPECTED: Record<string, Record<(typeof TIERS)[number], string>> = {
  'open-rdwr': { read: 'EPERM', write: 'ok', ops: 'ok' },
  // The exact exec-FIFO shape runc needs gets past seccomp; the read tiers' identity may not
  // write the database, and the read-only mount is behind that (container-worker.test.ts
  // reads the mount's flags).
  'open-wronly': { read: 'EACCES', write: 'ok', ops: 'ok' },
  create: { read: 'EPERM', write: 'ok', ops: 'ok' },
  unlink: { read: 'EPERM', write: 'ok', ops: 'ok' },
  rename: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  connect: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  ptrace: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  mount: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  unshare: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  setns: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  bpf: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  init_module: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  'proc-sys': { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  // A signal to a process outside the container (this test's, standing in for the agent or
  // another tier's worker): seccomp allows no kill, and the pid namespace shows no such pid.
  kill: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  fork: { read: 'EPERM', write: 'EPERM', ops: 'EPERM' },
  'exec-sh': { read: 'ENOENT', write: 'ENOENT', ops: 'ENOENT' },
};

function batteryArgs(tier: string): string[] {
  return [
    `open-rdwr=${db}`,
    `open-wronly=${db}`,
    `create=${path.join(dataDir, `created-by-${tier}`)}`,
    `unlink=${path.join(dataDir, `victim-${tier}`)}`,
    `rename=${path.join(dataDir, `victim2-${tier}`)}`,
    'connect=9',
    'mount',
    'unshare',
    'setns',
    'bpf',
    'init_module',
    'proc-sys',
    `kill=${process.pid}`,
    'fork',
    'exec-sh',
    'ptrace', // last: a traced process would stop at the next signal
  ];
}

describe.each(TIERS)('tier %s', (tier) => {
  test('boot phase: seccomp, mounts and namespaces refuse every attack the tier must not do', async () => {
    const r = await runExec([...execArgs(tier), attack, ...batteryArgs(tier)]);
    expect(r.stderr).not.toMatch(/cannot/);
    expect(r.code).toBe(0);
    const got = outcomes(r.stdout);
    const want = Object.fromEntries(Object.entries(BOOT_EXPECTED).map(([a, byTier]) => [a, byTier[tier]]));
    expect(got).toEqual(want);
  });

  test('serve phase: exec of any program is killed by the eBPF policy and counted', async () => {
    const report = path.join(dir, `report-exec-${tier}.json`);
    const r = await runExec([...execArgs(tier, ['--report', report]), attack, '--wait', 'exec-sh'], { serveWhenWaiting: true });
    expect(r.code).toBe(137);
    expect(r.stdout).toBe('waiting\n');
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep.counters.policy).toMatchObject({ action: 'enforce', phase: 'serve' });
    expect(rep.counters.syscalls.execve.violations).toBeGreaterThanOrEqual(1);
  });
});

test('serve phase, read tier: a write open that seccomp must let through (runc exec-FIFO shape) is killed', async () => {
  const report = path.join(dir, 'report-wronly.json');
  const r = await runExec([...execArgs('read', ['--report', report]), attack, '--wait', `open-wronly=${db}`], { serveWhenWaiting: true });
  expect(r.code).toBe(137);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  expect(rep.counters.policy.noWriteOpens).toBe(true);
  expect(rep.counters.syscalls.openat.violations).toBeGreaterThanOrEqual(1);
});

test('serve phase, write tier: the same write open is legitimate there and not killed', async () => {
  const report = path.join(dir, 'report-wronly-write.json');
  const r = await runExec([...execArgs('write', ['--report', report]), attack, '--wait', `open-wronly=${db}`], { serveWhenWaiting: true });
  expect(r.code).toBe(0);
  expect(outcomes(r.stdout)).toEqual({ 'open-wronly': 'ok' });
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  expect(rep.counters.syscalls.openat.violations).toBe(0);
});

test('audit mode: the battery is counted by the eBPF policy but neither seccomp nor eBPF blocks it', async () => {
  const report = path.join(dir, 'report-audit.json');
  const r = await runExec([...execArgs('read', ['--mode', 'audit', '--report', report]), attack, '--wait', ...batteryArgs('read')], { serveWhenWaiting: true });
  expect(r.code).toBe(0);
  const got = outcomes(r.stdout);
  // Calls seccomp refuses in enforce mode now reach the kernel:
  expect(got.fork).toBe('ok');
  expect(got.ptrace).toBe('ok');
  expect(got.connect).not.toBe('EPERM'); // the empty network namespace answers instead
  // ...and the file permissions (the read tiers' identity) and the read-only mounts still
  // hold, whatever the mode: the kernel asks the mount first when a file is to be created.
  expect(got['open-rdwr']).toBe('EACCES');
  expect(got.create).toBe('EROFS');
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  expect(rep.counters.policy).toMatchObject({ action: 'audit', phase: 'serve' });
  const violated = Object.entries(rep.counters.syscalls as Record<string, { violations: number }>)
    .filter(([, c]) => c.violations > 0)
    .map(([n]) => n);
  for (const sc of ['execve', 'ptrace', 'mount', 'unshare', 'setns', 'bpf', 'init_module', 'socket', 'rename', 'unlink', 'openat']) {
    expect(violated).toContain(sc);
  }
});

test('the O_WRONLY finding: a read profile denying every O_WRONLY open stops the container before its command runs', async () => {
  // Copy the shipped profiles and drop the rule that lets runc's exec-FIFO open through.
  const profiles = path.join(dir, 'profiles-no-fifo');
  cpSync(path.join(__dirname, '..', '..', 'profiles'), profiles, { recursive: true });
  const file = path.join(profiles, 'seccomp', 'read.json');
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const before = p.syscalls.length;
  p.syscalls = p.syscalls.filter((r: { names: string[]; args?: Array<{ op: string }> }) => !(r.names.includes('openat') && r.args?.some((a) => a.op === 'SCMP_CMP_EQ')));
  expect(p.syscalls.length).toBe(before - 1);
  writeFileSync(file, JSON.stringify(p));
  const r = await runExec([...execArgs('read', ['--profiles', profiles]), attack, 'fork']);
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/exec fifo.*operation not permitted/);
});

test('--serve-after: the serve phase starts by itself after the command started', async () => {
  // The attack program blocks on stdin after its start-up: whenever the switch lands, the
  // next thing it does (finish loading, or exec once released) is outside the serve set.
  const report = path.join(dir, 'report-serve-after.json');
  const r = await runExec([...execArgs('read', ['--serve-after', '0', '--report', report]), attack, '--wait', 'exec-sh'], {
    releaseOnServe: true,
  });
  expect(r.code).toBe(137);
  expect(r.stderr).toContain('fhirguard exec: serve phase');
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  expect(rep.counters.policy.phase).toBe('serve');
  const violations = Object.values(rep.counters.syscalls as Record<string, { violations: number }>).reduce((n, c) => n + c.violations, 0);
  expect(violations).toBeGreaterThanOrEqual(1);
});

test("exec passes the command's stdio and exit status through and prints nothing of its own on stdout", async () => {
  const r = await runExec([...execArgs('read'), attack, 'no-such-attack']);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain('unknown attack no-such-attack');
  const ok = await runExec([...execArgs('read'), attack, 'ptrace']);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toBe('ptrace errno=EPERM\n');
});
