// The in-toto statement a tier's envelope carries: what `fhirguard sign` builds, the shape
// the agent insists on before it compares anything, and the times it names (expiry and
// waivers: a date through its whole day in UTC, a date-time only with its zone).

import { parseExpiry } from '../../src/cli/sign';
import { buildStatement, parseStatement, PREDICATE_TYPE, STATEMENT_TYPE, StatementError, timeOf, type TierStatement } from '../../src/trust/statement';
import { checkStatement, type Observed } from '../../src/trust/verify';

const hex = (c: string): string => c.repeat(64);

function statement(): TierStatement {
  return buildStatement(
    { name: 'fhirguard-install', digest: { sha256: hex('1') } },
    {
      tier: 'read',
      subjectKind: 'install',
      seccomp: { name: 'seccomp/read.json', digest: { sha256: hex('2') } },
      ebpf: { name: 'ebpf/read.json', digest: { sha256: hex('3') } },
      policy: { name: 'policy.yaml', digest: { sha256: hex('4') } },
      signedAt: '2026-01-01T00:00:00.000Z',
    },
  );
}

const parse = (o: unknown): TierStatement => parseStatement(Buffer.from(JSON.stringify(o)));

test('a statement is an in-toto Statement v1 with one subject and the tier-confinement predicate', () => {
  const s = statement();
  expect(s).toEqual({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'fhirguard-install', digest: { sha256: hex('1') } }],
    predicateType: 'urn:fhirguard:tier-confinement:v1',
    predicate: expect.objectContaining({ tier: 'read', subjectKind: 'install' }),
  });
  expect(parse(s)).toEqual(s);
  // Unknown fields are dropped, not trusted.
  expect(parse({ ...s, extra: 1, predicate: { ...s.predicate, extra: 2 } })).toEqual(s);
});

test.each<[string, (s: Record<string, any>) => unknown, RegExp]>([
  ['another _type', (s) => ({ ...s, _type: 'https://in-toto.io/Statement/v0.1' }), /_type is "https:\/\/in-toto.io\/Statement\/v0.1"/],
  ['another predicateType', (s) => ({ ...s, predicateType: 'https://slsa.dev/provenance/v1' }), /predicateType is "https:\/\/slsa.dev\/provenance\/v1"/],
  ['two subjects', (s) => ({ ...s, subject: [s.subject[0], s.subject[0]] }), /subject must name exactly one artifact/],
  ['no subject', (s) => ({ ...s, subject: [] }), /subject must name exactly one artifact/],
  ['a subject digest that is not sha256 hex', (s) => ({ ...s, subject: [{ name: 'x', digest: { sha256: 'ABC' } }] }), /subject\[0\]\.digest\.sha256 is not a sha256 digest/],
  ['a subject with only another digest', (s) => ({ ...s, subject: [{ name: 'x', digest: { sha512: hex('a') } }] }), /subject\[0\]\.digest\.sha256/],
  ['no tier', (s) => ({ ...s, predicate: { ...s.predicate, tier: '' } }), /predicate\.tier missing/],
  ['another subject kind', (s) => ({ ...s, predicate: { ...s.predicate, subjectKind: 'vm' } }), /subjectKind must be image, install or server/],
  ['no seccomp digest', (s) => ({ ...s, predicate: { ...s.predicate, seccomp: { name: 'x' } } }), /predicate\.seccomp\.digest\.sha256/],
  ['an eBPF artifact that is a list', (s) => ({ ...s, predicate: { ...s.predicate, ebpf: [] } }), /predicate\.ebpf is not an object/],
  ['no policy', (s) => ({ ...s, predicate: { ...s.predicate, policy: undefined } }), /predicate\.policy\.digest\.sha256/],
  ['an expiry that is not a date', (s) => ({ ...s, predicate: { ...s.predicate, expires: 'tomorrow' } }), /predicate\.expires is not a date/],
  ['an expiry in local time', (s) => ({ ...s, predicate: { ...s.predicate, expires: '2030-01-01T12:00:00' } }), /predicate\.expires is not a date/],
  ['waivers that are not a list', (s) => ({ ...s, predicate: { ...s.predicate, scan: { digest: { sha256: hex('5') }, waivers: {} } } }), /predicate\.scan\.waivers must be a list/],
  ['a waiver without id', (s) => ({ ...s, predicate: { ...s.predicate, scan: { digest: { sha256: hex('5') }, waivers: [{ expires: '2030-01-01' }] } } }), /waivers\[0\]\.id missing/],
  ['a waiver without expiry', (s) => ({ ...s, predicate: { ...s.predicate, scan: { digest: { sha256: hex('5') }, waivers: [{ id: 'X' }] } } }), /waivers\[0\]\.expires is not a date/],
  ['a scan without digest', (s) => ({ ...s, predicate: { ...s.predicate, scan: { waivers: [] } } }), /predicate\.scan\.digest\.sha256/],
])('refused: %s', (_what, change, message) => {
  expect(() => parse(change(statement() as never))).toThrow(StatementError);
  expect(() => parse(change(statement() as never))).toThrow(message);
});

test('payloads that are not JSON objects are refused', () => {
  expect(() => parseStatement(Buffer.from('{'))).toThrow(/payload is not JSON/);
  expect(() => parseStatement(Buffer.from('null'))).toThrow(/_type is undefined/);
  expect(() => parseStatement(Buffer.from('[]'))).toThrow(/_type is undefined/);
});

test('times: a date holds through its last millisecond (UTC), a date-time needs its zone', () => {
  expect(timeOf('2030-06-30', 'x')).toBe(Date.parse('2030-06-30T23:59:59.999Z'));
  expect(timeOf('2030-06-30T12:00:00+02:00', 'x')).toBe(Date.parse('2030-06-30T10:00:00Z'));
  expect(timeOf('2030-06-30T12:00Z', 'x')).toBe(Date.parse('2030-06-30T12:00:00Z'));
  for (const bad of ['2030-06-30T12:00:00', '2030-02-30', '30-06-2030', '', 20300630]) expect(() => timeOf(bad, 'x')).toThrow(StatementError);
});

test('sign --expires: a duration from now, a date, or a date-time with zone', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  expect(parseExpiry('90d', now)).toBe('2030-04-01T00:00:00.000Z');
  expect(parseExpiry('12h', now)).toBe('2030-01-01T12:00:00.000Z');
  expect(parseExpiry('30m', now)).toBe('2030-01-01T00:30:00.000Z');
  expect(parseExpiry('10s', now)).toBe('2030-01-01T00:00:10.000Z');
  expect(parseExpiry('2031-01-31', now)).toBe('2031-01-31');
  expect(parseExpiry('2031-01-31T12:00:00Z', now)).toBe('2031-01-31T12:00:00Z');
  for (const bad of ['2031-01-31T12:00:00', '90', '1w', 'next year', '2031-13-01']) expect(() => parseExpiry(bad, now)).toThrow(/--expires/);
});

describe('checkStatement: the first difference decides', () => {
  const observed = (o: Partial<Observed> = {}): Observed => ({
    tier: 'read',
    subject: { name: 'fhirguard-install', digest: { sha256: hex('1') }, kind: 'install' },
    materials: {
      seccomp: { name: 'seccomp/read.json', digest: { sha256: hex('2') } },
      ebpf: { name: 'ebpf/read.json', digest: { sha256: hex('3') } },
      policy: { name: 'policy.yaml', digest: { sha256: hex('4') } },
    },
    loadedPolicy: hex('4'),
    now: Date.parse('2026-06-01T00:00:00Z'),
    ...o,
  });

  test('all the same: no mismatch; names are informative only', () => {
    expect(checkStatement(statement(), observed())).toBeNull();
    expect(checkStatement(statement(), observed({ subject: { name: 'elsewhere', digest: { sha256: hex('1') }, kind: 'install' } }))).toBeNull();
  });

  test('everything differs: the tier is named first, then expiry, subject, seccomp, eBPF, policy', () => {
    const s = statement();
    s.predicate.expires = '2026-01-01';
    const all = observed({
      tier: 'write',
      subject: { name: 'x', digest: { sha256: hex('9') }, kind: 'install' },
      materials: { seccomp: { name: 'a', digest: { sha256: hex('9') } }, ebpf: { name: 'b', digest: { sha256: hex('9') } }, policy: { name: 'c', digest: { sha256: hex('9') } } },
      loadedPolicy: hex('9'),
    });
    const reasons: string[] = [];
    for (const fix of [
      (o: Observed) => (o.tier = 'read'),
      () => delete s.predicate.expires,
      (o: Observed) => (o.subject.digest.sha256 = hex('1')),
      (o: Observed) => (o.materials.seccomp.digest.sha256 = hex('2')),
      (o: Observed) => (o.materials.ebpf.digest.sha256 = hex('3')),
      (o: Observed) => (o.materials.policy.digest.sha256 = hex('4')),
      (o: Observed) => (o.loadedPolicy = hex('4')),
    ]) {
      reasons.push(checkStatement(s, all)?.reason ?? 'none');
      fix(all);
    }
    expect(reasons).toEqual(['tier', 'expired', 'subject', 'seccomp', 'ebpf', 'policy', 'policy']);
    expect(checkStatement(s, all)).toBeNull();
  });

  test('STATEMENT_TYPE and PREDICATE_TYPE are the published names', () => {
    expect([STATEMENT_TYPE, PREDICATE_TYPE]).toEqual(['https://in-toto.io/Statement/v1', 'urn:fhirguard:tier-confinement:v1']);
  });
});
