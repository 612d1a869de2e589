// The x86_64 syscall table against the kernel headers and Docker's default profile, and the
// policy spec the TypeScript client hands the loader. No root needed.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { policySpec } from '../../src/enforce/bpf';
import { HEADER_SYSCALL_COUNT, NEWER_THAN_HEADERS, OTHER_SYSCALL_SLOT, SYSCALL_NAMES, X86_64_SYSCALLS, syscallName, syscallNr } from '../../src/enforce/syscalls';

const dockerAllow = path.resolve(__dirname, '..', '..', '..', 'shared', 'reference', 'docker-default-allow.txt');
const header = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';

describe('x86_64 syscall table', () => {
  it('has every number once and round-trips names and numbers', () => {
    const nrs = Object.values(X86_64_SYSCALLS);
    expect(new Set(nrs).size).toBe(nrs.length);
    expect(nrs.every((nr) => nr >= 0 && nr < OTHER_SYSCALL_SLOT)).toBe(true);
    for (const name of SYSCALL_NAMES) expect(syscallName(syscallNr(name)!)).toBe(name);
    expect(SYSCALL_NAMES.length).toBe(HEADER_SYSCALL_COUNT + Object.keys(NEWER_THAN_HEADERS).length);
  });

  it('agrees with the numbers the kernel and glibc use', () => {
    expect([syscallNr('read'), syscallNr('getppid'), syscallNr('execve'), syscallNr('openat'), syscallNr('openat2')]).toEqual([0, 110, 59, 257, 437]);
    expect(syscallNr('mseal')).toBe(462);
    expect(syscallNr('_llseek')).toBeUndefined(); // 32-bit only
    expect(syscallNr('constructor')).toBeUndefined();
    expect(syscallName(OTHER_SYSCALL_SLOT)).toBe('(compat-or-unknown)');
  });

  it('matches the installed kernel headers entry for entry', () => {
    if (!existsSync(header)) throw new Error(`${header} missing: install linux-libc-dev to check the table`);
    const text = readFileSync(header, 'utf8');
    const fromHeader = [...text.matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(fromHeader.length).toBe(HEADER_SYSCALL_COUNT);
    for (const [name, nr] of fromHeader) expect(X86_64_SYSCALLS[name]).toBe(nr);
  });

  it("reproduces Docker's 297 of 362: every other name in its allow list is another architecture's", () => {
    const names = readFileSync(dockerAllow, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    const x86 = names.filter((n) => syscallNr(n) !== undefined);
    expect(HEADER_SYSCALL_COUNT).toBe(362);
    expect(x86.length).toBe(297);
    const others = names.filter((n) => syscallNr(n) === undefined);
    expect(others).toEqual(expect.arrayContaining(['_llseek', 'chown32', 'fcntl64', 'clock_gettime64']));
  });
});

describe('policySpec', () => {
  it('numbers the serve allow set and allows all in boot and shutdown by default', () => {
    const spec = policySpec({ action: 'enforce', allow: ['write', 'read', 'read'], noWriteOpens: true });
    expect(spec.split('\n')).toEqual(expect.arrayContaining(['action enforce', 'record 0', 'no-write-opens 1', 'allow boot all', 'allow serve 0 1', 'allow shutdown all']));
    expect(spec).not.toMatch(/^egress/m);
    expect(spec).not.toMatch(/^phase/m);
  });

  it('an empty egress list denies all egress; rules carry address and port', () => {
    expect(policySpec({ action: 'audit', allow: [], egress: [] })).toMatch(/^egress none$/m);
    const spec = policySpec({
      action: 'audit',
      allow: [],
      egress: [
        { cidr: '10.0.0.0/8', port: 443 },
        { cidr: '::1', port: 0 },
      ],
    });
    expect(spec).toMatch(/^egress 10\.0\.0\.0\/8 443$/m);
    expect(spec).toMatch(/^egress ::1 0$/m);
    expect(spec).toMatch(/^allow serve$/m);
  });

  it('record allows everything in every phase and records', () => {
    const spec = policySpec({ action: 'record', allow: ['read'], phase: 'boot' });
    expect(spec).toMatch(/^action audit$/m);
    expect(spec).toMatch(/^record 1$/m);
    expect(spec).toMatch(/^allow serve all$/m);
    expect(spec).toMatch(/^phase boot$/m);
  });

  it('refuses unknown syscall names and malformed egress rules', () => {
    expect(() => policySpec({ action: 'enforce', allow: ['read', 'not_a_syscall'] })).toThrow(/unknown x86_64 syscall "not_a_syscall"/);
    expect(() => policySpec({ action: 'enforce', allow: [], bootAllow: ['_llseek'] })).toThrow(/boot allow set/);
    expect(() => policySpec({ action: 'enforce', allow: [], egress: [{ cidr: 'example.org', port: 80 }] })).toThrow(/bad address/);
    expect(() => policySpec({ action: 'enforce', allow: [], egress: [{ cidr: '::1', port: 70000 }] })).toThrow(/bad port/);
  });
});
