// Malformed profiles: every `fhirguard profile` subcommand exits 2 with a message naming
// the file (and where in it), and never crashes with a stack trace.

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES, profileCli, SMALL_DOCKER_DEFAULT } from './helpers';

const V1 = path.join(FIXTURES, 'v1');

const goodSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };

// [what, kind, file content, text the message must contain besides the file name]
const CASES: Array<[string, 'seccomp' | 'ebpf', string, string]> = [
  ['truncated JSON', 'seccomp', '{"defaultAction": "SCMP_ACT_ERRNO", ', 'not valid JSON'],
  ['an empty file', 'ebpf', '', 'not valid JSON'],
  ['a JSON array', 'seccomp', '[]', 'top level'],
  ['an unknown default action', 'seccomp', JSON.stringify({ ...goodSeccomp, defaultAction: 'SCMP_ACT_MAYBE' }), 'defaultAction'],
  ['syscalls not a list', 'seccomp', JSON.stringify({ ...goodSeccomp, syscalls: { read: 'allow' } }), 'syscalls'],
  ['a null rule', 'seccomp', JSON.stringify({ ...goodSeccomp, syscalls: [null] }), 'syscalls[0]'],
  ['names as a string', 'seccomp', JSON.stringify({ ...goodSeccomp, syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }] }), 'syscalls[0].names'],
  [
    'a 32-bit-only name',
    'seccomp',
    JSON.stringify({
      ...goodSeccomp,
      syscalls: [
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { names: ['chown32'], action: 'SCMP_ACT_ALLOW' },
      ],
    }),
    'syscalls[1].names',
  ],
  ['an unknown rule action', 'seccomp', JSON.stringify({ ...goodSeccomp, syscalls: [{ names: ['read'], action: 'ALLOW' }] }), 'syscalls[0].action'],
  [
    'an unknown argument operator',
    'seccomp',
    JSON.stringify({ ...goodSeccomp, syscalls: [{ names: ['openat'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 1, op: 'SCMP_CMP_LIKE' }] }] }),
    'syscalls[0].args[0].op',
  ],
  [
    'an argument index past 5',
    'seccomp',
    JSON.stringify({ ...goodSeccomp, syscalls: [{ names: ['openat'], action: 'SCMP_ACT_ALLOW', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }] }),
    'syscalls[0].args[0].index',
  ],
  ['a negative errnoRet', 'seccomp', JSON.stringify({ ...goodSeccomp, syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: -1 }] }), 'syscalls[0].errnoRet'],
  ['a serve set that is not a list', 'ebpf', JSON.stringify({ serve: 'read write' }), 'serve'],
  ['an unknown serve name', 'ebpf', JSON.stringify({ serve: ['read', 'frobnicate'] }), 'frobnicate'],
  ['a bad egress entry', 'ebpf', JSON.stringify({ serve: ['read'], egress: [{ cidr: '10.0.0.0/8', port: 'any' }] }), 'egress[0]'],
  [
    'an egress address that is not one',
    'ebpf',
    JSON.stringify({
      serve: ['read'],
      egress: [
        { cidr: '10.0.0.0/8', port: 1 },
        { cidr: 'db.example', port: 5432 },
      ],
    }),
    'egress[1].cidr',
  ],
  ['an egress prefix too long', 'ebpf', JSON.stringify({ serve: ['read'], egress: [{ cidr: '10.0.0.0/33', port: 1 }] }), 'egress[0].cidr'],
  ['an egress port out of range', 'ebpf', JSON.stringify({ serve: ['read'], egress: [{ cidr: '::1', port: 70000 }] }), 'egress[0].port'],
  ['noWriteOpens not a boolean', 'ebpf', JSON.stringify({ serve: ['read'], noWriteOpens: 'yes' }), 'noWriteOpens'],
];

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'fg-profile-errors-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of the v1 fixtures with tier alpha's profile of `kind` replaced by `content`. */
function brokenCopy(kind: string, content: string): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(work, 'set-'));
  cpSync(V1, dir, { recursive: true });
  const file = path.join(dir, kind, 'alpha.json');
  writeFileSync(file, content);
  return { dir, file };
}

function expectCleanFailure(r: ReturnType<typeof profileCli>, file: string, fragment: string): void {
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(file);
  expect(r.stderr).toContain(fragment);
  expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
}

describe.each(CASES)('%s', (_what, kind, content, fragment) => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    ({ dir, file } = brokenCopy(kind, content));
  });

  test('stats', () => expectCleanFailure(profileCli('stats', '--profiles', dir, '--docker-default', SMALL_DOCKER_DEFAULT), file, fragment));
  test('export', () => expectCleanFailure(profileCli('export', '--profiles', dir, '--format', 'spo'), file, fragment));
  test('diff (directory and single file)', () => {
    expectCleanFailure(profileCli('diff', V1, dir), file, fragment);
    expectCleanFailure(profileCli('diff', path.join(V1, kind, 'alpha.json'), file), file, fragment);
  });
});

describe('other unreadable inputs', () => {
  test('a profiles directory without profiles', () => {
    const empty = mkdtempSync(path.join(work, 'empty-'));
    expectCleanFailure(profileCli('stats', '--profiles', empty), empty, 'holds no profiles');
  });

  test('a missing profiles directory', () => {
    const missing = path.join(work, 'missing');
    expectCleanFailure(profileCli('export', '--profiles', missing, '--format', 'docker'), missing, 'no such file or directory');
  });

  test('a JSON file that is neither kind of profile', () => {
    const dir = mkdtempSync(path.join(work, 'flat-'));
    const file = path.join(dir, 'x.json');
    writeFileSync(file, '{"hello": 1}');
    expectCleanFailure(profileCli('diff', file, file), file, 'neither a seccomp profile');
  });

  test('a missing or malformed Docker default list', () => {
    const missing = path.join(work, 'no-docker.txt');
    expectCleanFailure(profileCli('stats', '--profiles', V1, '--docker-default', missing), missing, 'no such file');
    const bad = path.join(work, 'bad-docker.txt');
    writeFileSync(bad, 'read\nwrite(2)\n');
    expectCleanFailure(profileCli('stats', '--profiles', V1, '--docker-default', bad), bad, 'line 2');
  });

  test('a profile directory entry that is a directory, not a file', () => {
    const dir = mkdtempSync(path.join(work, 'dirent-'));
    mkdirSync(path.join(dir, 'seccomp', 'odd.json'), { recursive: true });
    const r = profileCli('stats', '--profiles', dir, '--docker-default', SMALL_DOCKER_DEFAULT);
    expectCleanFailure(r, path.join(dir, 'seccomp', 'odd.json'), '');
  });

  test('an unknown subcommand', () => {
    const r = profileCli('frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown or malformed subcommand');
  });
});
