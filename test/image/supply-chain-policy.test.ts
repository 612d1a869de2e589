// The policy file's supplyChain section: defaults, and a clear error at the right line for
// each mistake an operator makes in a waiver; an expired waiver loads with a warning.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compilePolicy, PolicyError } from '../../src/policy';

const SHIPPED = readFileSync(path.resolve(__dirname, '..', '..', 'profiles', 'policy.yaml'), 'utf8');
const BASE = SHIPPED.replace(/\nsupplyChain:[\s\S]*$/, '\n');
const LINES = BASE.split('\n').length;

function errors(section: string): string[] {
  try {
    compilePolicy(BASE + section, 'p.yaml');
  } catch (err) {
    if (err instanceof PolicyError) return err.message.split('\n').map((l) => l.replace(/^p\.yaml:(\d+):/, (_, n) => `+${Number(n) - LINES + 1}:`));
    throw err;
  }
  return [];
}

describe('policy supplyChain section', () => {
  test('defaults: fail on high, unknown severity counts as high, no waivers', () => {
    const p = compilePolicy(BASE, 'p.yaml');
    expect(p.supplyChain).toEqual({ failOn: 'high', unknownSeverity: 'high', waivers: [] });
  });

  test('the shipped policy loads with its supplyChain section', () => {
    const p = compilePolicy(SHIPPED, 'policy.yaml');
    expect(p.supplyChain.failOn).toBe('high');
  });

  test('waivers with reason and expiry load; an expired one is a warning', () => {
    const p = compilePolicy(
      `${BASE}supplyChain:
  scan:
    failOn: critical
    unknownSeverity: medium
  waivers:
    - id: GHSA-aaaa-bbbb-cccc
      package: undici
      reason: workers make no outbound HTTP requests
      expires: 2999-12-31
    - id: CVE-2020-0001
      reason: accepted until the base image is rebuilt
      expires: 2020-01-01T12:00:00Z
`,
      'p.yaml',
    );
    expect(p.supplyChain.failOn).toBe('critical');
    expect(p.supplyChain.unknownSeverity).toBe('medium');
    expect(p.supplyChain.waivers.map((w) => [w.id, w.package, w.expires, w.path])).toEqual([
      ['GHSA-aaaa-bbbb-cccc', 'undici', '2999-12-31', 'supplyChain.waivers[0]'],
      ['CVE-2020-0001', undefined, '2020-01-01T12:00:00Z', 'supplyChain.waivers[1]'],
    ]);
    expect(p.supplyChain.waivers[0].expiresAt).toBe(Date.parse('2999-12-31T23:59:59.999Z'));
    expect(p.warnings).toContain('p.yaml: supplyChain.waivers[1]: the waiver of CVE-2020-0001 expired on 2020-01-01T12:00:00Z: images with that finding are refused again');
  });

  test('a waiver without reason or expiry, a vague reason, a bad date, a bad severity, a duplicate', () => {
    expect(
      errors(`supplyChain:
  scan:
    failOn: severe
  waivers:
    - id: GHSA-aaaa-bbbb-cccc
      expires: 2030-01-01
    - id: GHSA-aaaa-bbbb-dddd
      reason: the code path is not reachable from a worker
    - id: GHSA-aaaa-bbbb-eeee
      reason: ok
      expires: 2030-02-30
    - id: not an id
      reason: the code path is not reachable from a worker
      expires: next year
`),
    ).toEqual([
      '+3:13: supplyChain.scan.failOn: "severe" is not a severity; expected one of low, medium, high, critical',
      '+5:7: supplyChain.waivers[0].reason: missing required field (why the finding is acceptable here, for whoever reviews the waiver)',
      '+7:7: supplyChain.waivers[1].expires: missing required field (the last day (UTC) the waiver holds; after it the finding refuses the image again)',
      '+10:15: supplyChain.waivers[2].reason: "ok": say why the finding is acceptable (at least 10 characters)',
      '+11:16: supplyChain.waivers[2].expires: "2030-02-30" is not a date (YYYY-MM-DD) or an ISO date-time with zone',
      '+12:11: supplyChain.waivers[3].id: "not an id" is not an advisory id such as GHSA-xxxx-xxxx-xxxx or CVE-2024-12345',
      '+14:16: supplyChain.waivers[3].expires: "next year" is not a date (YYYY-MM-DD) or an ISO date-time with zone',
    ]);
    expect(
      errors(`supplyChain:
  waivers:
    - id: CVE-2024-1
      reason: the code path is not reachable from a worker
      expires: 2030-01-01
    - id: CVE-2024-1
      reason: the same advisory waived twice
      expires: 2031-01-01
`),
    ).toEqual(['+6:11: supplyChain.waivers[1].id: CVE-2024-1 is already waived by supplyChain.waivers[0]']);
    expect(errors('supplyChain:\n  waiver: []\n')).toEqual(['+2:3: supplyChain.waiver: unknown field; expected one of: scan, waivers']);
  });
});
