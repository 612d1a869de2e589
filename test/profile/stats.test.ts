// `fhirguard profile stats` on fixture profiles counted by hand (test/fixtures/profile/README.md
// describes them), run through the real CLI.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DANGEROUS_SYSCALLS } from '../../src/profile/dangerous';
import { X86_64_TABLE } from '../../src/profile/reference';
import { SYSCALL_NAMES, syscallNr } from '../../src/enforce/syscalls';
import { DOCKER_DEFAULT, FIXTURES, jsonOf, profileCli, SMALL_DOCKER_DEFAULT } from './helpers';
import { DOCKER_DEFAULT_ALLOWED_COUNT } from '../../src/profile/reference';

const V1 = path.join(FIXTURES, 'v1');

describe('profile stats on hand-counted fixtures', () => {
  let report: any;
  beforeAll(() => {
    report = jsonOf(profileCli('stats', '--profiles', V1, '--docker-default', SMALL_DOCKER_DEFAULT, '--json'));
  });
  const tier = (name: string): any => report.tiers.find((t: any) => t.tier === name);

  test('tiers come in the policy order (beta, alpha), tiers the policy does not name after them', () => {
    expect(report.tiers.map((t: any) => t.tier)).toEqual(['beta', 'alpha', 'gamma']);
  });

  test('baselines: the x86_64 header table and the x86_64 names of the Docker list', () => {
    expect(report.x86_64Syscalls).toBe(362);
    // read, write, close, openat, exit_group; chown32 is 32-bit only.
    expect(report.dockerDefault.allowed).toBe(5);
    for (const t of report.tiers) expect(t.dockerDefaultAllowed).toBe(5);
  });

  test('alpha: unconditional, logged and filtered rules all count as allowed; errno and kill rules do not', () => {
    const a = tier('alpha');
    // read, write, close, exit_group, execve (ALLOW), ptrace (LOG), openat and clone (filters).
    expect(a.seccompAllowed).toBe(8);
    expect(a.conditionallyAllowed).toEqual(['clone', 'openat']);
    expect(a.bootAllowed).toBe(8);
    expect(a.serveAllowed).toBe(5);
    expect(a.dangerous).toEqual({ seccomp: ['execve', 'ptrace'], boot: ['execve', 'ptrace'], serve: [] });
    expect(a.beyondDockerDefault).toEqual(['clone', 'execve', 'ptrace']);
    expect(a.serveOutsideSeccomp).toEqual([]);
    expect(a.reduction.seccompVsX86_64).toBeCloseTo((1 - 8 / 362) * 100, 1);
    expect(a.reduction.serveVsDockerDefault).toBe(0);
    expect(a.reduction.seccompVsDockerDefault).toBe(-60);
    expect(a.noWriteOpens).toBe(true);
    expect(a.egress).toEqual(['10.0.0.0/8 5432']);
  });

  test('beta: a default-allow profile allows every name but its unconditional denials', () => {
    const b = tier('beta');
    expect(b.seccompAllowed).toBe(SYSCALL_NAMES.length - 2); // all but execve, execveat
    expect(b.conditionallyAllowed).toEqual(['socket']); // refused only for AF_INET
    expect(b.serveAllowed).toBe(3);
    expect(b.dangerous.serve).toEqual(['execve']);
    expect(b.dangerous.seccomp).not.toContain('execve');
    expect(b.dangerous.seccomp).toContain('ptrace');
    expect(b.serveOutsideSeccomp).toEqual(['execve']);
    expect(b.egress).toBeNull(); // no egress list: unrestricted
  });

  test('gamma: seccomp only, no serve figures', () => {
    const g = tier('gamma');
    expect(g.seccompAllowed).toBe(2);
    expect(g.serveAllowed).toBeNull();
    expect(g.reduction.serveVsX86_64).toBeNull();
    expect(g.files.ebpf).toBeNull();
  });

  test('the human table shows the same figures', () => {
    const r = profileCli('stats', '--profiles', V1, '--docker-default', SMALL_DOCKER_DEFAULT);
    expect(r.code).toBe(0);
    const row = r.stdout.split('\n').find((l) => l.startsWith('alpha '));
    expect(row?.trim().split(/\s+/).slice(0, 5)).toEqual(['alpha', '8', '2', '8', '5']);
    expect(r.stdout).toMatch(/alpha:\n {2}conditionally allowed \(argument filters\): clone, openat/);
    expect(r.stdout).toContain('dangerous allowed in serve: execve');
  });

  test('against the real Docker default list: 297 x86_64 names', () => {
    const r = jsonOf(profileCli('stats', '--profiles', V1, '--docker-default', DOCKER_DEFAULT, '--json', '--tier', 'alpha'));
    expect(r.tiers.map((t: any) => t.tier)).toEqual(['alpha']);
    expect(r.tiers[0].dockerDefaultAllowed).toBe(297);
    // The constant the metrics export where the list is not at hand agrees with the list.
    expect(r.tiers[0].dockerDefaultAllowed).toBe(DOCKER_DEFAULT_ALLOWED_COUNT);
  });

  test('an unusable policy leaves the tiers sorted by name, and says so', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fg-profile-'));
    try {
      cpSync(V1, dir, { recursive: true });
      writeFileSync(path.join(dir, 'policy.yaml'), 'tiers: [\n');
      const r = profileCli('stats', '--profiles', dir, '--docker-default', SMALL_DOCKER_DEFAULT, '--json');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).tiers.map((t: any) => t.tier)).toEqual(['alpha', 'beta', 'gamma']);
      expect(r.stderr).toContain(path.join(dir, 'policy.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the dangerous list', () => {
  test('names only x86_64 syscalls, each with a reason', () => {
    for (const [name, why] of Object.entries(DANGEROUS_SYSCALLS)) {
      expect(syscallNr(name)).toBeDefined();
      expect(why.length).toBeGreaterThan(10);
    }
  });

  test('covers the families the issue names', () => {
    for (const n of [
      'execve',
      'execveat',
      'ptrace',
      'process_vm_readv',
      'process_vm_writev',
      'mount',
      'umount2',
      'pivot_root',
      'move_mount',
      'open_tree',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'mount_setattr',
      'unshare',
      'setns',
      'bpf',
      'perf_event_open',
      'init_module',
      'finit_module',
      'delete_module',
      'keyctl',
      'add_key',
      'request_key',
      'userfaultfd',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
      'kexec_load',
      'kexec_file_load',
      'personality',
    ]) {
      expect(DANGEROUS_SYSCALLS).toHaveProperty(n);
    }
  });

  test('the x86_64 baseline is the 362-name header table', () => {
    expect(X86_64_TABLE).toHaveLength(362);
    expect(new Set(X86_64_TABLE).size).toBe(362);
  });
});
