// `fhirguard image build` and `image scan` for real: the worker image built twice from this
// tree with umoci gives the same manifest digest; it holds node, its libraries and the
// install's production packages, and no shell; the scan finds the fixture advisories aimed
// at packages it really holds, and the gate refuses, waives, and refuses again once a
// waiver has expired.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildImage, type BuildResult } from '../../src/image/build';
import { applyGate } from '../../src/image/scan-gate';
import { manifestDigest, parseImageRef, resolveImage } from '../../src/image/layout';
import { scanImage, type ScanResult } from '../../src/image/scan';
import { compilePolicy, type SupplyChainPolicy } from '../../src/policy';
import { FHIRGUARD, REPO, removeDir, shortTempDir } from '../helpers/confined';

const OSV = path.join(REPO, 'test', 'fixtures', 'osv');
const EPOCH = 1700000000;
const BASE_POLICY = readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8').replace(/\nsupplyChain:[\s\S]*$/, '\n');

function policyText(waivers: string): string {
  return `${BASE_POLICY}supplyChain:\n  scan:\n    failOn: high\n${waivers ? `  waivers:\n${waivers}` : ''}`;
}

/** Waivers for the three findings at or above high; `fastifyExpires` sets the first one's expiry. */
function waivers(fastifyExpires: string): string {
  return [
    `    - id: FGTEST-2025-0001\n      package: fastify\n      reason: test waiver of the fastify fixture\n      expires: ${fastifyExpires}\n`,
    '    - id: CVE-2099-10003\n      reason: test waiver of the pino fixture, by its alias\n      expires: 2999-01-01\n',
    '    - id: FGTEST-2025-0005\n      package: libc6\n      reason: test waiver of the glibc fixture\n      expires: 2999-01-01\n',
  ].join('');
}

function supplyChain(text: string): SupplyChainPolicy {
  return compilePolicy(text, 'test-policy.yaml').supplyChain;
}

let dir: string;
let first: BuildResult;
let second: BuildResult;
let scan: ScanResult;

beforeAll(async () => {
  dir = shortTempDir('image');
  first = buildImage({ install: REPO, output: path.join(dir, 'a'), tag: 'v1', epoch: EPOCH });
  second = buildImage({ install: REPO, output: path.join(dir, 'b'), tag: 'v1', epoch: EPOCH });
  scan = await scanImage({ image: first.ref, advisories: OSV, policy: supplyChain(policyText('')), tool: { name: 'fhirguard', version: 'test' } });
}, 240_000);

afterAll(() => removeDir(dir));

describe('image build', () => {
  test('two builds of the same tree give the same digest, layer by layer', () => {
    expect(second.digest).toBe(first.digest);
    expect(second.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
    expect(first.layers.map((l) => l.name)).toEqual(['runtime', 'node_modules', 'app']);
  });

  test('an OCI layout umoci reads, with the config the agent runs', async () => {
    const stat = JSON.parse(execFileSync('umoci', ['stat', '--json', '--image', first.ref], { encoding: 'utf8' })) as { history: Array<{ created: string; created_by: string }> };
    expect(stat.history.map((h) => h.created_by)).toEqual([
      expect.stringMatching(/node v20.*shared libraries/),
      'fhirguard image build: production node_modules',
      expect.stringMatching(/^fhirguard image build: fhirguard .*dist\/src/),
    ]);
    expect(stat.history.every((h) => h.created === '2023-11-14T22:13:20Z')).toBe(true);
    const img = resolveImage(first.ref);
    expect(img.config.created).toBe('2023-11-14T22:13:20Z');
    expect(img.config.config).toMatchObject({ User: '65534:65534', Entrypoint: [process.execPath, '/opt/fhirguard/bin/fhirguard'], Cmd: ['worker'] });
    expect(img.config.config?.Labels).toMatchObject({ 'org.fhirguard.data-dir': '/data', 'org.fhirguard.socket-dir': '/run/fhirguard' });
    expect(await manifestDigest(path.join(dir, 'a'))).toBe(first.digest);
    expect(await manifestDigest(`${path.join(dir, 'a')}@${first.digest}`)).toBe(first.digest);
    expect(parseImageRef('/x:y/layout:v2')).toEqual({ layout: '/x:y/layout', tag: 'v2' });
    await expect(manifestDigest(`${path.join(dir, 'a')}:nope`)).rejects.toThrow(/no image tagged nope \(tags: v1\)/);
  });

  test('a rebuild under a new tag keeps the old one in the same layout', () => {
    const again = buildImage({ install: REPO, output: path.join(dir, 'b'), tag: 'v2', epoch: EPOCH + 1 });
    expect(again.digest).not.toBe(second.digest);
    const index = JSON.parse(readFileSync(path.join(dir, 'b', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
    expect(index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]).sort()).toEqual([
      ['v1', second.digest],
      ['v2', again.digest],
    ]);
  }, 120_000);

  test('node, its loader and libraries, the production packages; no shell, no dev packages', () => {
    const inv = scan.inventory;
    for (const p of [
      'usr/bin/node',
      'lib64/ld-linux-x86-64.so.2',
      'lib/x86_64-linux-gnu/libc.so.6',
      'etc/ld.so.cache',
      'opt/fhirguard/bin/fhirguard',
      'opt/fhirguard/dist/src/cli/index.js',
      'opt/fhirguard/node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'data',
      'run/fhirguard',
    ]) {
      expect([p, inv.has(p)]).toEqual([p, true]);
    }
    for (const p of [
      'bin/sh',
      'usr/bin/sh',
      'bin/bash',
      'usr/bin/env',
      'usr/bin/dpkg',
      'opt/fhirguard/node_modules/jest',
      'opt/fhirguard/node_modules/typescript',
      'opt/fhirguard/node_modules/.bin',
      'opt/fhirguard/node_modules/better-sqlite3/deps',
      'opt/fhirguard/src',
    ]) {
      expect([p, inv.has(p)]).toEqual([p, false]);
    }
  });
});

describe('image scan', () => {
  const installed = (name: string): string => (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

  test('a CycloneDX SBOM of the npm and Debian packages, the same bytes on every scan', async () => {
    const sbom = scan.sbom as {
      bomFormat: string;
      specVersion: string;
      components: Array<{ name: string; group?: string; version: string; purl: string; type: string }>;
      metadata: { component: { type: string; version: string } };
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.specVersion).toBe('1.5');
    expect(sbom.metadata.component).toMatchObject({ type: 'container', version: first.digest });
    const byPurl = new Map(sbom.components.map((c) => [c.purl, c]));
    expect(byPurl.get(`pkg:npm/fastify@${installed('fastify')}`)).toMatchObject({ name: 'fastify', type: 'library' });
    expect(byPurl.get(`pkg:npm/%40medplum/core@${installed('@medplum/core')}`)).toMatchObject({ group: '@medplum', name: 'core' });
    // Development packages (the test runner, the benchmarks' baseline proxy) are not in the image.
    expect(sbom.components.find((c) => c.name === 'jest')).toBeUndefined();
    expect(sbom.components.find((c) => c.name === 'http-proxy')).toBeUndefined();
    const debs = sbom.components.filter((c) => c.purl?.startsWith('pkg:deb/debian/')).map((c) => c.name);
    expect(debs).toEqual(expect.arrayContaining(['libc6', 'libstdc++6', 'nodejs']));
    expect(sbom.components.find((c) => c.type === 'operating-system')).toMatchObject({ name: 'debian', version: '12' });
    const dpkgVersion = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libc6'], { encoding: 'utf8' });
    expect(sbom.components.find((c) => c.name === 'libc6')?.version).toBe(dpkgVersion);
    const again = await scanImage({ image: `${path.join(dir, 'b')}:v1`, advisories: OSV, policy: supplyChain(policyText('')), tool: { name: 'fhirguard', version: 'test' } });
    expect(again.sbomJson).toBe(scan.sbomJson);
    expect(again.reportDigest).toBe(scan.reportDigest);
  });

  test('finds the fixture advisories aimed at installed packages, and only those', () => {
    expect(scan.findings.map((f) => [f.id, f.component.ecosystem, f.component.name, f.severity ?? null])).toEqual([
      ['FGTEST-2025-0001', 'npm', 'fastify', 'high'],
      ['FGTEST-2025-0003', 'npm', 'pino', 'critical'],
      ['FGTEST-2025-0004', 'npm', 'yaml', 'medium'],
      ['FGTEST-2025-0005', 'Debian', 'libc6', null],
      ['FGTEST-2025-0010', 'npm', 'prom-client', 'medium'],
      ['FGTEST-2025-0011', 'npm', 'rfc6902', 'medium'],
      ['FGTEST-2025-0012', 'npm', 'negotiator', 'medium'],
    ]);
    expect(scan.findings[0].component.version).toBe(installed('fastify'));
    expect(scan.findings[1].severitySource).toBe('CVSS v3 base score 9.8');
    expect(scan.findings[3].fixed).toEqual(['2.36-9+deb12u999']);
  });

  test('the gate refuses, waives, and refuses again once a waiver expired', () => {
    const refuse = applyGate(scan.findings, supplyChain(policyText('')));
    expect(refuse.refused).toBe(true);
    expect(refuse.blocking.map((g) => [g.finding.id, g.severity])).toEqual([
      ['FGTEST-2025-0001', 'high'],
      ['FGTEST-2025-0003', 'critical'],
      ['FGTEST-2025-0005', 'high'],
    ]);
    expect(refuse.below.map((g) => g.finding.id)).toEqual(['FGTEST-2025-0004', 'FGTEST-2025-0010', 'FGTEST-2025-0011', 'FGTEST-2025-0012']);

    const waived = applyGate(scan.findings, supplyChain(policyText(waivers('2999-01-01'))));
    expect(waived.refused).toBe(false);
    expect(waived.waived.map((g) => [g.finding.id, g.waiver?.path])).toEqual([
      ['FGTEST-2025-0001', 'supplyChain.waivers[0]'],
      ['FGTEST-2025-0003', 'supplyChain.waivers[1]'],
      ['FGTEST-2025-0005', 'supplyChain.waivers[2]'],
    ]);

    const expired = supplyChain(policyText(waivers('2020-01-01')));
    const d = applyGate(scan.findings, expired);
    expect(d.refused).toBe(true);
    expect(d.blocking.map((g) => [g.finding.id, g.waiver?.expires])).toEqual([['FGTEST-2025-0001', '2020-01-01']]);
    // The same waiver holds through its last day (UTC) and not a millisecond longer.
    expect(applyGate(scan.findings, expired, Date.parse('2020-01-01T23:59:59.999Z')).refused).toBe(false);
    expect(applyGate(scan.findings, supplyChain(policyText('')), 0).failOn).toBe('high');
    // A stricter threshold catches the medium findings too.
    expect(applyGate(scan.findings, { ...supplyChain(policyText(waivers('2999-01-01'))), failOn: 'medium' }).blocking.map((g) => g.finding.id)).toEqual([
      'FGTEST-2025-0004',
      'FGTEST-2025-0010',
      'FGTEST-2025-0011',
      'FGTEST-2025-0012',
    ]);
  });

  test('fhirguard image scan: exit 1 listing the findings, 0 with waivers, 1 with an expired one; report and SBOM written', () => {
    const run = (policy: string): { status: number | null; stdout: string; stderr: string } => {
      const file = path.join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, policy);
      const r = spawnSync(FHIRGUARD, ['image', 'scan', first.ref, '--advisories', OSV, '--policy', file, '--report', path.join(dir, 'report.json'), '--sbom', path.join(dir, 'sbom.json')], {
        encoding: 'utf8',
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const refused = run(policyText(''));
    expect(refused.status).toBe(1);
    expect(refused.stdout).toMatch(/refused: 3 findings at or above high severity/);
    expect(refused.stdout).toMatch(new RegExp(`FGTEST-2025-0001 high: npm fastify ${installed('fastify').replace(/\./g, '\\.')}, fixed in 5\\.99\\.0`));
    expect(refused.stdout).toMatch(/FGTEST-2025-0005 high \(advisory states none\): Debian libc6/);
    expect(JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8'))).toMatchObject({ image: { digest: first.digest }, waivers: [] });
    expect(JSON.parse(readFileSync(path.join(dir, 'sbom.json'), 'utf8'))).toMatchObject({ bomFormat: 'CycloneDX' });

    const passes = run(policyText(waivers('2999-01-01')));
    expect(passes.stdout).toMatch(/passes the scan gate/);
    expect(passes.status).toBe(0);
    const report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as { waivers: Array<{ id: string; expires: string }> };
    expect(report.waivers.map((w) => w.id)).toEqual(['FGTEST-2025-0001', 'CVE-2099-10003', 'FGTEST-2025-0005']);

    const expired = run(policyText(waivers('2020-01-01')));
    expect(expired.status).toBe(1);
    expect(expired.stdout).toMatch(/FGTEST-2025-0001 .*\[waiver supplyChain\.waivers\[0\] expired on 2020-01-01\]/);
    expect(expired.stderr).toMatch(/warning: .*the waiver of FGTEST-2025-0001 expired on 2020-01-01/);

    const usage = spawnSync(FHIRGUARD, ['image', 'scan', first.ref], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/--advisories/);
    const digest = spawnSync(FHIRGUARD, ['image', 'digest', first.ref], { encoding: 'utf8' });
    expect(digest.stdout.trim()).toBe(first.digest);
  }, 120_000);
});
