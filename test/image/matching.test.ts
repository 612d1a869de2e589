// The parts of the scan that need no image: version order (Debian's checked against dpkg
// itself), CVSS v2, v3 and v4 base scores, OSV matching and range evaluation, and the tar
// format round trip.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { inRange, loadAdvisories, matchAdvisories } from '../../src/image/osv';
import type { Inventory } from '../../src/image/sbom';
import { advisorySeverity, cvssBaseScore } from '../../src/image/severity';
import { readTarStream } from '../../src/archive/tar-read';
import { writeTar } from '../../src/image/tar';
import { compareDebian, compareSemver } from '../../src/image/versions';

function dpkgSays(a: string, op: string, b: string): boolean {
  return spawnSync('dpkg', ['--compare-versions', a, op, b]).status === 0;
}

describe('version order', () => {
  test('SemVer 2.0 precedence', () => {
    const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.2.0', '1.10.0', '2.0.0'];
    for (let i = 0; i + 1 < ordered.length; i++) {
      expect(compareSemver(ordered[i], ordered[i + 1])).toBeLessThan(0);
      expect(compareSemver(ordered[i + 1], ordered[i])).toBeGreaterThan(0);
    }
    expect(compareSemver('1.2.3+build.5', '1.2.3')).toBe(0);
    expect(() => compareSemver('1.2', '1.2.0')).toThrow(/not a semantic version/);
  });

  test('Debian order is what dpkg --compare-versions says', () => {
    const versions = [
      '2.36-9+deb12u14',
      '2.36-9+deb12u999',
      '2.36-9',
      '2.36',
      '2.36~rc1',
      '2.36-9~bpo1',
      '1:2.0',
      '1:1.9',
      '0:2.36-9+deb12u14',
      '20.20.2-1nodesource1+repack1',
      '20.0.0-1',
      '1.0a',
      '1.0',
      '1.0+',
      '1.0.0',
      '1.0-0',
      '1.0-1.1',
      '12.4+deb12u11',
      '2:1.02.185-2',
      '1.0~~',
      '1.0~~a',
    ];
    for (const a of versions) {
      for (const b of versions) {
        const ours = Math.sign(compareDebian(a, b));
        const lt = dpkgSays(a, 'lt', b);
        const eq = dpkgSays(a, 'eq', b);
        expect([a, b, ours]).toEqual([a, b, lt ? -1 : eq ? 0 : 1]);
      }
    }
  }, 120_000);
});

describe('severity', () => {
  // Published scores: FIRST's CVSS v2 guide (CVE-2002-0392, CVE-2003-0818), its v3.1
  // specification examples, the v4.0 specification's examples, and v4.0 vectors as FIRST's
  // calculator scores them (NVD: CVE-2024-7657 is 5.3).
  test.each([
    ['CVSS_V2', 'AV:N/AC:L/Au:N/C:N/I:N/A:C', 7.8],
    ['CVSS_V2', 'AV:N/AC:L/Au:N/C:C/I:C/A:C', 10],
    ['CVSS_V2', 'AV:N/AC:L/Au:N/C:P/I:P/A:P', 7.5],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
    ['CVSS_V3', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N', 5.3],
    ['CVSS_V3', 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N', 0],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 9.3],
    ['CVSS_V4', 'CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 8.5],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N', 0],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N', 6.9],
    ['CVSS_V4', 'CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.3],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.7],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N', 5.3],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H', 7.9],
    ['CVSS_V4', 'CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N', 4.6],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 10],
  ])('%s %s scores %d', (type, vector, score) => {
    expect(cvssBaseScore(type, vector)).toBe(score);
  });

  // The base score only: threat, temporal and environmental metrics describe the issuer's view
  // of exploitation at one time and its own environment, not the image's. With them, FIRST's
  // calculator scores these 5.2, 9.1, 8.1 (v4) and 8.5, 6.8 (v3), 5.5 (v2).
  test.each([
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U', 7.7],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U', 10],
    ['CVSS_V4', 'CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N/CR:H/IR:L/AR:L/MAV:N/MAC:H/MVC:H/MVI:L/MVA:L', 8.3],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C', 9.8],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:P', 9.8],
    ['CVSS_V2', 'AV:N/AC:L/Au:N/C:P/I:P/A:P/E:U/RL:OF/RC:C', 7.5],
  ])('%s %s: base metrics only, %d', (type, vector, score) => {
    expect(cvssBaseScore(type, vector)).toBe(score);
  });

  test.each([
    ['CVSS_V4', 'CVSS:4.0/AV:N'],
    ['CVSS_V3', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H'],
    ['CVSS_V2', 'AV:N/AC:L/C:P/I:P/A:P'],
    ['CVSS_V3', 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N'],
    ['CVSS_V2', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'],
    ['CVSS_V3', 'not a vector'],
  ])('%s %s: not a complete vector of that version, unscored', (type, vector) => {
    expect(cvssBaseScore(type, vector)).toBeUndefined();
  });

  test('advisories with only v2 or only v4 vectors are scored, each on its own scale', () => {
    expect(advisorySeverity({ severity: [{ type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' }] })).toEqual({
      severity: 'critical',
      source: 'CVSS v4 base score 9.3',
    });
    // v2 has no critical: 10.0 is high.
    expect(advisorySeverity({ severity: [{ type: 'CVSS_V2', score: 'AV:N/AC:L/Au:N/C:C/I:C/A:C' }] })).toEqual({ severity: 'high', source: 'CVSS v2 base score 10.0' });
  });

  test('the newest CVSS version present decides, the highest score within it', () => {
    const v2 = { type: 'CVSS_V2', score: 'AV:N/AC:L/Au:N/C:C/I:C/A:C' };
    const v3low = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N' };
    const v3high = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' };
    const v4 = { type: 'CVSS_V4', score: 'CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' };
    expect(advisorySeverity({ severity: [v2, v3low] })).toEqual({ severity: 'medium', source: 'CVSS v3 base score 5.3' });
    expect(advisorySeverity({ severity: [v3low, v3high] }).source).toBe('CVSS v3 base score 9.8');
    expect(advisorySeverity({ severity: [v3high, v4] }, { severity: [v2] })).toEqual({ severity: 'high', source: 'CVSS v4 base score 8.5' });
  });

  test('the database label first, then the CVSS vector, else unknown', () => {
    expect(advisorySeverity({ database_specific: { severity: 'MODERATE' }, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }).severity).toBe('medium');
    expect(advisorySeverity({ severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] })).toEqual({ severity: 'critical', source: 'CVSS v3 base score 9.8' });
    expect(advisorySeverity({}, { severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N' }] }).severity).toBe('medium');
    expect(advisorySeverity({ severity: [{ type: 'CVSS_V4', score: 'CVSS:4.0/AV:N' }] })).toEqual({ source: 'none' });
  });
});

describe('the fixture database, matched without an image', () => {
  const npm = (name: string, version: string): Inventory['components'][number] => ({ ecosystem: 'npm', name, version, purl: `pkg:npm/${name}@${version}`, locations: [] });
  const inv = { components: [npm('prom-client', '15.1.3'), npm('rfc6902', '5.1.2'), npm('negotiator', '1.1.0'), npm('pino', '10.4.0')], files: 0, has: () => false } as unknown as Inventory;

  test('advisories rated only in CVSS v4 or v2 are scored, not left to the unknown default', () => {
    const findings = matchAdvisories(loadAdvisories(path.join(__dirname, '..', 'fixtures', 'osv')), inv);
    expect(findings.map((f) => [f.id, f.component.name, f.severity ?? null, f.severitySource])).toEqual([
      ['FGTEST-2025-0003', 'pino', 'critical', 'CVSS v3 base score 9.8'],
      ['FGTEST-2025-0010', 'prom-client', 'medium', 'CVSS v4 base score 5.3'],
      ['FGTEST-2025-0011', 'rfc6902', 'medium', 'CVSS v2 base score 5.0'],
      ['FGTEST-2025-0012', 'negotiator', 'medium', 'CVSS v4 base score 4.6'],
    ]);
  });
});

describe('OSV ranges', () => {
  test('introduced, fixed, last_affected, several ranges in one', () => {
    const ev = [{ introduced: '1.0.0' }, { fixed: '1.5.0' }, { introduced: '2.0.0' }, { fixed: '2.3.0' }];
    const affected = (v: string, e = ev): boolean => inRange(v, e, compareSemver);
    expect(['0.9.0', '1.5.0', '1.7.0', '2.3.0', '3.0.0'].map((v) => affected(v))).toEqual([false, false, false, false, false]);
    expect(['1.0.0', '1.4.9', '2.0.0', '2.2.9'].map((v) => affected(v))).toEqual([true, true, true, true]);
    // events in any order, introduced 0, last_affected
    expect(inRange('1.2.3', [{ last_affected: '1.2.3' }, { introduced: '0' }], compareSemver)).toBe(true);
    expect(inRange('1.2.4', [{ last_affected: '1.2.3' }, { introduced: '0' }], compareSemver)).toBe(false);
    expect(inRange('2.36-9+deb12u14', [{ introduced: '0' }, { fixed: '2.36-9+deb12u15' }], compareDebian)).toBe(true);
    expect(inRange('2.36-9+deb12u14', [{ introduced: '0' }, { fixed: '2.36-9+deb12u3' }], compareDebian)).toBe(false);
  });
});

describe('tar', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fg-tar-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('sorted, fixed metadata, long paths through PAX; GNU tar reads it and our reader reads it back', async () => {
    const src = path.join(dir, 'src.bin');
    writeFileSync(src, Buffer.alloc(1000, 7));
    const long = `a/${'d'.repeat(120)}/${'f'.repeat(110)}.json`;
    const entries = [
      { path: 'b', type: 'dir' as const },
      { path: 'a', type: 'dir' as const },
      { path: `a/${'d'.repeat(120)}`, type: 'dir' as const },
      { path: long, type: 'file' as const, executable: false, data: Buffer.from('{"x":1}') },
      { path: 'b/run', type: 'file' as const, executable: true, source: src },
      { path: 'b/link', type: 'symlink' as const, target: `../${'t'.repeat(150)}` },
    ];
    const file = path.join(dir, 'x.tar');
    writeTar(file, entries, 1700000000);
    const again = path.join(dir, 'y.tar');
    writeTar(again, [...entries].reverse(), 1700000000);
    expect(readFileSync(again).equals(readFileSync(file))).toBe(true);

    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(['a/', `a/${'d'.repeat(120)}/`, `${long}`, 'b/', `b/link -> ../${'t'.repeat(150)}`, 'b/run']);
    expect(listing.every((l) => l.includes(' 0/0 ') && l.includes('2023-11-14 22:13:20'))).toBe(true);
    expect(listing[5].startsWith('-rwxr-xr-x')).toBe(true);

    const read = await readTarStream(Readable.from([readFileSync(file)]), (h) => h.path.endsWith('.json') || h.path === 'b/run', {
      maxEntryBytes: 2 ** 20,
      maxTotalBytes: 2 ** 24,
      maxEntries: 100,
      rootfs: true,
    });
    expect(read.map((e) => [e.path, e.type])).toEqual([
      ['a', 'dir'],
      [`a/${'d'.repeat(120)}`, 'dir'],
      [long, 'file'],
      ['b', 'dir'],
      ['b/link', 'symlink'],
      ['b/run', 'file'],
    ]);
    expect(read[2].data?.toString()).toBe('{"x":1}');
    expect(read[4].target).toBe(`../${'t'.repeat(150)}`);
    expect(read[5].data?.equals(Buffer.alloc(1000, 7))).toBe(true);
    expect(read[5].mode).toBe(0o755);
  });
});
