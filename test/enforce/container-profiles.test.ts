// The shipped tier profiles and their translation into a container's linux.seccomp: what
// each tier allows, the modes, and the checks that catch a broken profile file.

import path from 'node:path';
import { loadEbpfProfile, parseEbpfProfile } from '../../src/enforce/ebpf-profile';
import { allowedSyscalls, loadSeccompProfile, ociSeccomp, parseSeccompProfile, type SeccompProfile } from '../../src/enforce/seccomp';

const PROFILES = path.resolve(__dirname, '..', '..', 'profiles');
const TIERS = ['read', 'write', 'ops'];
const O_WRONLY = 0x1;
const O_RDWR = 0x2;
const O_CREAT = 0x40;
const O_TRUNC = 0x200;
const O_APPEND = 0x400;
const O_CLOEXEC = 0x80000;

const seccomp = (tier: string): SeccompProfile => loadSeccompProfile(path.join(PROFILES, 'seccomp', `${tier}.json`));

/** Would the profile's openat rules let these flags through (rules OR'ed, args AND'ed)? */
function openatAllowed(p: SeccompProfile, flags: number, mode = 0): boolean {
  return p.syscalls
    .filter((r) => r.names.includes('openat') && r.action === 'SCMP_ACT_ALLOW')
    .some((r) =>
      (r.args ?? []).every((a) => {
        const v = a.index === 2 ? flags : a.index === 3 ? mode : NaN;
        if (a.op === 'SCMP_CMP_MASKED_EQ') return (v & a.value) === (a.valueTwo ?? 0);
        if (a.op === 'SCMP_CMP_EQ') return v === a.value;
        throw new Error(`test does not model ${a.op}`);
      }),
    );
}

// Calls no tier's worker needs; none may be allowed by any seccomp profile.
const DANGEROUS = [
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'mount',
  'umount2',
  'pivot_root',
  'unshare',
  'setns',
  'bpf',
  'perf_event_open',
  'init_module',
  'finit_module',
  'delete_module',
  'kexec_load',
  'keyctl',
  'add_key',
  'userfaultfd',
  'io_uring_setup',
  'personality',
  'fork',
  'vfork',
  'connect',
  'open_by_handle_at',
  'chroot',
  'setuid',
  'setgid',
  'reboot',
  'swapon',
];

describe.each(TIERS)('shipped %s profiles', (tier) => {
  test('seccomp: default EPERM, x86_64 only, no dangerous syscall, no rename/mkdir/link', () => {
    const p = seccomp(tier);
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64']);
    const allowed = allowedSyscalls(p);
    for (const sc of [...DANGEROUS, 'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'link', 'linkat', 'symlink', 'creat']) expect(allowed).not.toContain(sc);
    // clone only with CLONE_THREAD; clone3 and openat2 answered ENOSYS (their flags are in a struct).
    expect(p.syscalls.find((r) => r.names.includes('clone'))?.args).toEqual([{ index: 0, value: 0x10000, valueTwo: 0x10000, op: 'SCMP_CMP_MASKED_EQ' }]);
    for (const sc of ['clone3', 'openat2']) expect(p.syscalls.find((r) => r.names.includes(sc))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  test('opens: runc exec-FIFO shape always passes; O_TRUNC, O_APPEND and other O_WRONLY opens never', () => {
    const p = seccomp(tier);
    expect(openatAllowed(p, O_WRONLY | O_CLOEXEC)).toBe(true);
    expect(openatAllowed(p, O_WRONLY | O_CLOEXEC, 0o644)).toBe(false);
    expect(openatAllowed(p, O_WRONLY)).toBe(false);
    expect(openatAllowed(p, O_RDWR | O_TRUNC)).toBe(false);
    expect(openatAllowed(p, O_RDWR | O_APPEND)).toBe(false);
    expect(openatAllowed(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)).toBe(false);
    expect(openatAllowed(p, O_CLOEXEC)).toBe(true);
    // Only the tiers that write open the database and its journal O_RDWR|O_CREAT.
    expect(openatAllowed(p, O_RDWR | O_CREAT | O_CLOEXEC)).toBe(tier !== 'read');
  });

  test('eBPF serve set: within what seccomp allows, no execve, no process creation, no network', () => {
    const e = loadEbpfProfile(path.join(PROFILES, 'ebpf', `${tier}.json`));
    const allowed = new Set(allowedSyscalls(seccomp(tier)));
    expect(e.serve.filter((sc) => !allowed.has(sc))).toEqual([]);
    for (const sc of ['execve', 'execveat', 'socket', 'bind', 'listen', 'connect', 'chmod', 'clone3', ...DANGEROUS]) expect(e.serve).not.toContain(sc);
    expect(e.egress).toEqual([]);
    expect(e.noWriteOpens).toBe(tier === 'read');
    expect(e.serve.length).toBeLessThan(allowed.size);
  });
});

test('the read tier allows no file-changing call at all', () => {
  const allowed = allowedSyscalls(seccomp('read'));
  for (const sc of ['unlink', 'unlinkat', 'ftruncate', 'truncate', 'fsync', 'fdatasync', 'pwrite64', 'fchmod', 'fchown', 'chown']) expect(allowed).not.toContain(sc);
});

test('audit mode turns every refusal into SCMP_ACT_LOG; record mode allows and logs everything', () => {
  const p = seccomp('read');
  const enforce = ociSeccomp(p, 'enforce');
  expect(enforce.defaultAction).toBe('SCMP_ACT_ERRNO');
  expect(enforce.syscalls.some((r) => r.action === 'SCMP_ACT_ERRNO')).toBe(true);
  const audit = ociSeccomp(p, 'audit');
  expect(audit.defaultAction).toBe('SCMP_ACT_LOG');
  expect(audit.defaultErrnoRet).toBeUndefined();
  expect(audit.syscalls.filter((r) => r.action !== 'SCMP_ACT_ALLOW' && r.action !== 'SCMP_ACT_LOG')).toEqual([]);
  expect(audit.syscalls.length).toBe(enforce.syscalls.length);
  expect(ociSeccomp(p, 'record')).toEqual({ defaultAction: 'SCMP_ACT_LOG', architectures: ['SCMP_ARCH_X86_64'], syscalls: [] });
  // Comments stay in the file: the kernel-bound object carries none.
  expect(JSON.stringify(enforce)).not.toContain('comment');
});

test('a broken profile is refused with the file and the rule named', () => {
  const base = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };
  expect(() => parseSeccompProfile({ ...base, defaultAction: 'SCMP_ACT_NOPE' }, 'x.json')).toThrow(/x\.json: defaultAction: unknown action/);
  expect(() => parseSeccompProfile({ ...base, syscalls: [{ names: ['read', 'not_a_syscall'], action: 'SCMP_ACT_ALLOW' }] }, 'x.json')).toThrow(
    /syscalls\[0\]\.names: not x86_64 syscalls: not_a_syscall/,
  );
  expect(() => parseSeccompProfile({ ...base, syscalls: [{ names: ['openat'], action: 'SCMP_ACT_ALLOW', args: [{ index: 7, value: 1, op: 'SCMP_CMP_EQ' }] }] }, 'x.json')).toThrow(/args\[0\]\.index/);
  expect(() => parseSeccompProfile({ ...base, syscalls: [{ names: ['openat'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 1, op: 'LIKE' }] }] }, 'x.json')).toThrow(/unknown operator/);
  expect(() => parseEbpfProfile({ serve: ['read', 'nope'] }, 'e.json')).toThrow(/e\.json: serve: not x86_64 syscalls: nope/);
  expect(() => parseEbpfProfile({ serve: [], egress: [{ cidr: '10.0.0.0/8' }] }, 'e.json')).toThrow(/egress\[0\]/);
});
