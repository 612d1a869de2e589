// `fhirguard profile export` for Docker, OCI and the Security Profiles Operator, on the
// fixtures and on the shipped profiles, through the real CLI.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadProfileSet } from '../../src/profile/load';
import { seccompSets } from '../../src/profile/seccomp-sets';
import { parseSeccompProfile } from '../../src/enforce/seccomp';
import { FIXTURES, jsonOf, profileCli, SHIPPED } from './helpers';

const V1 = path.join(FIXTURES, 'v1');
const SOURCES: Array<[string, string]> = [
  ['fixtures', V1],
  ['shipped profiles', SHIPPED],
];

let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'fg-profile-export-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function exportTo(source: string, format: string, ...extra: string[]): string {
  const out = mkdtempSync(path.join(work, `${format}-`));
  const r = profileCli('export', '--profiles', source, '--format', format, '--out', out, ...extra);
  if (r.code !== 0) throw new Error(`export exit ${r.code}: ${r.stderr}`);
  return out;
}

/** The tiers of a source with their seccomp sets, as the loader reads them. */
function originals(source: string): Map<string, { file: string; sets: ReturnType<typeof seccompSets> }> {
  const set = loadProfileSet(source);
  return new Map(set.tiers.filter((t) => t.seccomp).map((t) => [t.tier, { file: t.seccomp!.file, sets: seccompSets(t.seccomp!.profile) }]));
}

describe.each(SOURCES)('export from the %s', (_name, source) => {
  test('docker: one file per tier that parses back to the same allowed and conditional sets, and diffs as identical', () => {
    const out = exportTo(source, 'docker');
    const tiers = originals(source);
    expect(readdirSync(out).sort()).toEqual([...tiers.keys()].map((t) => `fhirguard-${t}.json`).sort());
    for (const [tier, orig] of tiers) {
      const file = path.join(out, `fhirguard-${tier}.json`);
      const back = parseSeccompProfile(JSON.parse(readFileSync(file, 'utf8')), file);
      expect(seccompSets(back)).toEqual(orig.sets);
      // Every rule, action and argument filter survives: the semantic diff sees no change.
      const d = profileCli('diff', orig.file, file);
      expect({ tier, code: d.code, out: d.stdout }).toEqual({ tier, code: 0, out: expect.stringMatching(/^No differences/) });
    }
  });

  test('oci: the linux.seccomp object, without comments, same allowed sets', () => {
    const out = exportTo(source, 'oci');
    for (const [tier, orig] of originals(source)) {
      const file = path.join(out, `fhirguard-${tier}.oci-seccomp.json`);
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain('"comment"');
      const obj = JSON.parse(text);
      expect(Object.keys(obj).every((k) => ['defaultAction', 'defaultErrnoRet', 'architectures', 'syscalls'].includes(k))).toBe(true);
      expect(seccompSets(parseSeccompProfile(obj, file))).toEqual(orig.sets);
    }
  });

  test('spo: a cluster-scoped SeccompProfile v1 (SPO >= 1.0) per tier with the CRD fields only, same allowed sets', () => {
    const out = exportTo(source, 'spo');
    for (const [tier, orig] of originals(source)) {
      const file = path.join(out, `fhirguard-${tier}.seccompprofile.yaml`);
      const text = readFileSync(file, 'utf8');
      const doc = parse(text);
      expect(doc.apiVersion).toBe('security-profiles-operator.x-k8s.io/v1');
      expect(doc.kind).toBe('SeccompProfile');
      expect(doc.metadata.name).toBe(`fhirguard-${tier}`);
      expect(doc.metadata.namespace).toBeUndefined();
      // The header tells a reader the path a pod names it by.
      expect(text).toContain(`localhostProfile operator/fhirguard-${tier}.json`);
      expect(Object.keys(doc.spec).sort()).toEqual(['architectures', 'defaultAction', 'syscalls']);
      for (const rule of doc.spec.syscalls) {
        for (const k of Object.keys(rule)) expect(['names', 'action', 'errnoRet', 'args']).toContain(k);
        expect(new Set(rule.names).size).toBe(rule.names.length); // the CRD's names are a set
        for (const a of rule.args ?? []) expect(Object.keys(a).sort()).toEqual(['index', 'op', 'value', 'valueTwo']);
        expect((rule.args ?? []).length).toBeLessThanOrEqual(6);
      }
      expect(seccompSets(parseSeccompProfile(doc.spec, file))).toEqual(orig.sets);
    }
  });

  test.each(['docker', 'oci', 'spo'])('%s: two runs give the same bytes', (format) => {
    const a = exportTo(source, format);
    const b = exportTo(source, format);
    const files = readdirSync(a).sort();
    expect(readdirSync(b).sort()).toEqual(files);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(path.join(b, f))).toEqual(readFileSync(path.join(a, f)));
  });
});

describe('export output choices', () => {
  test('spo without --out: one YAML stream with a document per tier', () => {
    const r = profileCli('export', '--profiles', V1, '--format', 'spo');
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(docs.map((d) => d.metadata.name)).toEqual(['fhirguard-beta', 'fhirguard-alpha', 'fhirguard-gamma']);
  });

  test('spo --spo-api v1beta1: the same objects for SPO 0.9 and 0.10, which serve v1beta1 only', () => {
    const v1 = parseAllDocuments(profileCli('export', '--profiles', V1, '--format', 'spo').stdout).map((d) => d.toJS());
    const r = profileCli('export', '--profiles', V1, '--format', 'spo', '--spo-api', 'v1beta1');
    expect(r.code).toBe(0);
    const beta = parseAllDocuments(r.stdout).map((d) => d.toJS());
    expect(beta.map((d) => d.apiVersion)).toEqual(v1.map(() => 'security-profiles-operator.x-k8s.io/v1beta1'));
    expect(beta.map(({ apiVersion, ...rest }) => rest)).toEqual(v1.map(({ apiVersion, ...rest }) => rest));
  });

  test('docker without --out needs one tier', () => {
    const many = profileCli('export', '--profiles', V1, '--format', 'docker');
    expect(many.code).toBe(2);
    expect(many.stderr).toContain('--out');
    const one = jsonOf(profileCli('export', '--profiles', V1, '--format', 'docker', '--tier', 'alpha'));
    expect(one.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(one.syscalls[0].names).toEqual(['close', 'execve', 'exit_group', 'read', 'write']); // sorted
    expect(one.syscalls[0].comment).toBe('basics');
  });

  test('--mode audit: nothing is refused any more, everything refused is logged', () => {
    const enforce = jsonOf(profileCli('export', '--profiles', V1, '--format', 'oci', '--tier', 'alpha'));
    const audit = jsonOf(profileCli('export', '--profiles', V1, '--format', 'oci', '--tier', 'alpha', '--mode', 'audit'));
    expect(enforce.syscalls.some((r: any) => r.action === 'SCMP_ACT_KILL_PROCESS')).toBe(true);
    expect(audit.defaultAction).toBe('SCMP_ACT_LOG');
    expect(audit.syscalls.every((r: any) => r.action === 'SCMP_ACT_ALLOW' || r.action === 'SCMP_ACT_LOG')).toBe(true);
    expect(audit.defaultErrnoRet).toBeUndefined();
  });

  test.each([
    [['--format', 'podman'], '--format must be one of docker, oci, spo'],
    [['--format', 'docker', '--mode', 'strict'], '--mode must be enforce or audit'],
    [['--format', 'spo', '--tier', 'nope'], 'no profiles for tier nope'],
    [['--format', 'spo', '--spo-api', 'v1alpha1'], '--spo-api must be one of v1, v1beta1'],
  ])('bad options %j: exit 2', (args, message) => {
    const r = profileCli('export', '--profiles', V1, ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
