// `fhirguard profile diff` on two versions of the fixture profiles (v1 → v2: the changes are
// listed in test/fixtures/profile/README.md), through the real CLI.

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES, jsonOf, profileCli } from './helpers';

const V1 = path.join(FIXTURES, 'v1');
const V2 = path.join(FIXTURES, 'v2');

describe('profile diff of two profile directories', () => {
  let r: ReturnType<typeof profileCli>;
  let report: any;
  beforeAll(() => {
    r = profileCli('diff', V1, V2, '--json');
    report = jsonOf(r);
  });
  const tier = (name: string): any => report.tiers.find((t: any) => t.tier === name);

  test('exit 1 when the profiles differ', () => {
    expect(r.code).toBe(1);
    expect(report.identical).toBe(false);
  });

  test('beta changed only comments, rule order and grouping: not a difference', () => {
    expect(tier('beta')).toBeUndefined();
    expect(report.tiers.map((t: any) => [t.tier, t.status])).toEqual([
      ['alpha', 'changed'],
      ['delta', 'added'],
      ['gamma', 'removed'],
    ]);
  });

  test('seccomp: names added and removed, filters dropped and changed, actions changed', () => {
    const s = tier('alpha').seccomp;
    expect(s.added).toEqual(['fsync']);
    expect(s.removed).toEqual(['close']);
    expect(s.nowUnconditional).toEqual(['clone']);
    expect(s.nowConditional).toEqual([]);
    expect(s.argFilters).toEqual([{ name: 'openat', a: ['SCMP_ACT_ALLOW if arg2 & 0x643 == 0x0'], b: ['SCMP_ACT_ALLOW if arg2 & 0x641 == 0x0'] }]);
    expect(s.actions).toEqual([
      { name: 'ptrace', a: ['SCMP_ACT_LOG'], b: ['SCMP_ACT_ALLOW'] },
      { name: 'mount', a: ['SCMP_ACT_KILL_PROCESS'], b: ['SCMP_ACT_ERRNO(1)'] },
    ]);
    expect(s.defaultAction).toBeUndefined();
  });

  test('eBPF: serve set, write opens and egress', () => {
    const e = tier('alpha').ebpf;
    expect(e.serve).toEqual({ added: ['fsync'], removed: ['close'] });
    expect(e.noWriteOpens).toEqual({ a: true, b: false });
    expect(e.egress).toEqual({ added: ['10.0.0.0/8 5433'], removed: ['10.0.0.0/8 5432'] });
  });

  test('added and removed tiers are described by what they allow', () => {
    expect(tier('delta').seccomp.added).toEqual(['exit_group', 'read', 'write']);
    expect(tier('delta').ebpf.serve.added).toEqual(['exit_group', 'read']);
    expect(tier('gamma').seccomp.removed).toEqual(['exit_group', 'read']);
    expect(tier('gamma').ebpf).toBeUndefined(); // gamma never had an eBPF profile
  });

  test('the human form says the same', () => {
    const h = profileCli('diff', V1, V2);
    expect(h.code).toBe(1);
    expect(h.stdout).toContain('+ allowed (1): fsync');
    expect(h.stdout).toContain('- allowed (1): close');
    expect(h.stdout).toContain('~ argument filters of openat');
    expect(h.stdout).toContain('~ action of mount: [SCMP_ACT_KILL_PROCESS] → [SCMP_ACT_ERRNO(1)]');
    expect(h.stdout).toContain('tier delta (added)');
    expect(h.stdout).not.toContain('tier beta');
  });

  test('reversed, adds and removes swap', () => {
    const back = jsonOf(profileCli('diff', V2, V1, '--json'));
    const s = back.tiers.find((t: any) => t.tier === 'alpha').seccomp;
    expect(s.added).toEqual(['close']);
    expect(s.removed).toEqual(['fsync']);
    expect(s.nowConditional).toEqual(['clone']);
  });
});

describe('profile diff: identical inputs, single files, errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fg-profile-diff-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a directory against itself: exit 0', () => {
    const r = profileCli('diff', V1, V1);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^No differences/);
  });

  test('two seccomp files, compared whatever their names', () => {
    const copy = path.join(dir, 'renamed.json');
    copyFileSync(path.join(V1, 'seccomp', 'alpha.json'), copy);
    expect(profileCli('diff', path.join(V1, 'seccomp', 'alpha.json'), copy).code).toBe(0);
    const r = jsonOf(profileCli('diff', path.join(V1, 'seccomp', 'alpha.json'), path.join(V2, 'seccomp', 'alpha.json'), '--json'));
    expect(r.tiers).toHaveLength(1);
    expect(r.tiers[0].tier).toBe('alpha');
    expect(r.tiers[0].seccomp.added).toEqual(['fsync']);
    expect(r.tiers[0].ebpf).toBeUndefined();
  });

  test('two eBPF files', () => {
    const r = profileCli('diff', path.join(V1, 'ebpf', 'alpha.json'), path.join(V2, 'ebpf', 'alpha.json'), '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).tiers[0].ebpf.serve.added).toEqual(['fsync']);
  });

  test.each([
    ['a file with a directory', [path.join(V1, 'seccomp', 'alpha.json'), V2], 'not a file with a directory'],
    ['a seccomp profile with an eBPF profile', [path.join(V1, 'seccomp', 'alpha.json'), path.join(V1, 'ebpf', 'alpha.json')], 'eBPF profile'],
    ['a missing path', [V1, path.join(FIXTURES, 'no-such-dir')], path.join(FIXTURES, 'no-such-dir')],
    ['one argument', [V1], 'two profile files or directories'],
  ])('%s: exit 2 with a message', (_what, args, message) => {
    const r = profileCli('diff', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });
});
