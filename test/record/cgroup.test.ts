// `fhirguard record --cgroup <dir> --duration <s>`: a running process in a cgroup v2 directory
// of its own (as a Docker or Kubernetes container is) is recorded by the real eBPF recorder,
// and its profiles come out in fhirguard's formats; a fhirguard worker's cgroup and a
// directory that is not a cgroup are refused.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BpfEnforcer } from '../../src/enforce/bpf';
import { loadEbpfProfile } from '../../src/enforce/ebpf-profile';
import { allowedSyscalls, loadSeccompProfile } from '../../src/enforce/seccomp';
import { CGROUP2, Child, killAll, removeCgroup } from '../enforce/bpf-helpers';
import { FHIRGUARD, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';

let dir: string;
const cgroups: string[] = [];

function cgroupDir(name: string): string {
  const d = path.join(CGROUP2, `fg-record-test-${process.pid}-${name}`);
  mkdirSync(d, { recursive: true });
  cgroups.push(d);
  return d;
}

interface Running {
  /** Resolves on the first stderr line matching, or when the command ends. */
  saw(re: RegExp): Promise<boolean>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function record(args: string[]): Running {
  const child = spawn(process.execPath, [FHIRGUARD, 'record', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: { re: RegExp; resolve: (b: boolean) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const w of [...watchers]) if (w.re.test(stderr)) w.resolve(true);
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => {
      for (const w of watchers) w.resolve(false);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    saw: (re) => (re.test(stderr) ? Promise.resolve(true) : new Promise((resolve) => watchers.push({ re, resolve }))),
  };
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('record-cgroup');
  await new BpfEnforcer().load();
});

afterAll(async () => {
  await killAll();
  for (const c of cgroups) await removeCgroup(c).catch(() => undefined);
  removeDir(dir);
});

test('records what a running process in the cgroup does, and writes both profiles and a report', async () => {
  const cg = cgroupDir('server');
  const child = await Child.start(cg);
  const out = path.join(dir, 'out');
  const run = record(['--cgroup', cg, '--duration', '4', '--out', out, '--name', 'myserver', '--json']);
  expect(await run.saw(/recording .* for 4 s/)).toBe(true);
  // What the "server" does while recorded: its calls, and nothing else, must show.
  expect(await child.send('getppid')).toMatch(/^ok /);
  expect(await child.send(`mkdir ${path.join(dir, 'made-by-child')}`)).toMatch(/^ok /);
  const r = await run.done;
  expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/was not recorded/)]);
  const report = JSON.parse(r.stdout);
  expect(report.seen).toEqual(expect.arrayContaining(['getppid', 'mkdir', 'read', 'write']));
  // fg-test-child makes raw syscalls only: nothing it did not do may appear.
  expect(report.seen).not.toContain('getpid');
  expect(report.seen).not.toContain('execve');
  const seccomp = loadSeccompProfile(path.join(out, 'seccomp', 'myserver.json'));
  expect(seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
  expect(allowedSyscalls(seccomp)).toEqual(report.seen);
  expect(loadEbpfProfile(path.join(out, 'ebpf', 'myserver.json')).serve).toEqual(report.seen);
  // The recording is gone from the kernel once done: the cgroup is no longer registered.
  const after = await new BpfEnforcer().counters(cg);
  expect(after.cgroups).toEqual([]);
}, 120_000);

test('keeps the argument filters of a --template', async () => {
  const cg = cgroupDir('templated');
  const child = await Child.start(cg);
  const out = path.join(dir, 'out2');
  const template = path.join(__dirname, '..', '..', 'profiles', 'seccomp', 'read.json');
  const run = record(['--cgroup', cg, '--duration', '3', '--out', out, '--name', 'x', '--template', template]);
  expect(await run.saw(/recording/)).toBe(true);
  expect(await child.send('open-r /etc/hostname')).toMatch(/^ok /);
  expect((await run.done).code).toBe(0);
  const p = loadSeccompProfile(path.join(out, 'seccomp', 'x.json'));
  expect(p.syscalls.find((s) => s.names.includes('openat'))?.args?.[0]).toMatchObject({ index: 2, value: 1603, op: 'SCMP_CMP_MASKED_EQ' });
  expect(p.syscalls.find((s) => s.names.includes('clone3'))?.action).toBe('SCMP_ACT_ERRNO');
}, 120_000);

test("refuses a cgroup that already has a fhirguard policy (one of the agent's workers)", async () => {
  const cg = cgroupDir('worker');
  const bpf = new BpfEnforcer();
  await bpf.setPolicy(cg, { allow: ['read'], action: 'audit' });
  try {
    const r = await record(['--cgroup', cg, '--duration', '1', '--out', path.join(dir, 'out3')]).done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already has a fhirguard policy/);
    // Its policy is left as it was.
    expect((await bpf.counters(cg)).cgroups[0].policy?.action).toBe('audit');
  } finally {
    await bpf.forget(cg);
  }
}, 60_000);

test('refuses a directory that is not a cgroup v2 directory, and bad usage', async () => {
  const r = await record(['--cgroup', dir, '--duration', '1', '--out', path.join(dir, 'out4')]).done;
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/not a cgroup v2 directory/);
  expect((await record(['--cgroup', dir, '--out', path.join(dir, 'o')]).done).code).toBe(2);
  expect((await record(['--cgroup', dir, '--duration', '1']).done).code).toBe(2);
}, 60_000);
