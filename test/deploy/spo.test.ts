// fhirguard's Kubernetes manifests against each Security Profiles Operator release they
// claim: the SeccompProfile CRD of the release (its scope, served versions and spec schema,
// vendored in fixtures/spo-seccompprofile-crds.json from SPO's own CRD files) validates every
// SeccompProfile the overlay for that release renders, and every worker names its profile by
// the path that release installs it at: <kubelet>/seccomp/operator/<name>.json for a
// cluster-scoped object, operator/<namespace>/<name>.json for a namespaced one (SPO's
// GetProfilePath). `fhirguard profile export --format spo` is checked the same way.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv from 'ajv';
import { parse as parseYaml } from 'yaml';
import { exportProfiles, type SpoApi } from '../../src/profile/export';
import { loadProfileSet } from '../../src/profile/load';
import { comparable, kubectlKustomize, overlay, render, type K8sObject } from './kustomize';
import crds from './fixtures/spo-seccompprofile-crds.json';

const REPO = resolve(__dirname, '..', '..');
const BASE = join(REPO, 'deploy', 'kubernetes');

interface Release {
  release: string;
  group: string;
  kind: string;
  scope: 'Cluster' | 'Namespaced';
  versions: Array<{ name: string; served: boolean; storage: boolean; spec: any }>;
}
const RELEASES = crds.releases as Release[];

/** The component docs/kubernetes.md tells the users of each SPO release to add. */
const COMPONENT: Record<string, string | undefined> = { 'v1.0.0': undefined, 'v0.10.1': 'spo-0.9', 'v0.9.0': 'spo-0.9', 'v0.8.4': 'spo-0.8' };

/**
 * The CRD's schema as the API server applies it with strict field validation (kubectl's
 * default): an unknown field is an error, not silently pruned.
 */
function strict(schema: any): any {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== 'object') return schema;
  const out: any = Object.fromEntries(
    Object.entries(schema)
      .filter(([k]) => !k.startsWith('x-kubernetes-'))
      .map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, strict(s)])) : strict(v)]),
  );
  if (schema.properties && !schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });

/** Why a SeccompProfile object would be refused by a cluster running this SPO release, [] if not. */
function refusals(release: Release, o: K8sObject): string[] {
  const [group, version] = o.apiVersion.split('/');
  const served = release.versions.find((v) => v.name === version && v.served);
  const where = `${release.release} ${o.kind}/${o.metadata.name}`;
  if (group !== release.group || o.kind !== release.kind) return [`${where}: not a ${release.group} ${release.kind}`];
  if (!served)
    return [
      `${where}: ${o.apiVersion} is not served (served: ${release.versions
        .filter((v) => v.served)
        .map((v) => v.name)
        .join(', ')})`,
    ];
  const problems: string[] = [];
  if (release.scope === 'Cluster' && o.metadata.namespace !== undefined) problems.push(`${where}: cluster-scoped, but given namespace ${o.metadata.namespace}`);
  if (release.scope === 'Namespaced' && o.metadata.namespace === undefined) problems.push(`${where}: namespaced, but given no namespace`);
  const validate = ajv.compile(strict(served.spec));
  if (!validate(o.spec))
    problems.push(
      ...(validate.errors ?? []).map((e) => `${where}: spec${e.instancePath} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${(e.params as any).additionalProperty})` : ''}`),
    );
  return problems;
}

/** Where a release installs a profile, relative to the kubelet's seccomp root. */
function installedAt(release: Release, profile: K8sObject): string {
  return release.scope === 'Cluster' ? `operator/${profile.metadata.name}.json` : `operator/${profile.metadata.namespace}/${profile.metadata.name}.json`;
}

// Made while the tests are collected: each release's rendering is shared by its tests.
const tmp = mkdtempSync(join(tmpdir(), 'fg-spo-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function renderFor(release: Release): { objects: K8sObject[]; dir: string } {
  const dir = mkdtempSync(join(tmp, `${release.release}-`));
  const component = COMPONENT[release.release];
  writeFileSync(join(dir, 'kustomization.yaml'), overlay(dir, BASE, component ? [join(BASE, component)] : []));
  return { objects: render(dir).objects, dir };
}

test('the fixture holds the SPO releases the docs name, the newest storing v1 cluster-scoped', () => {
  expect(RELEASES.map((r) => r.release)).toEqual(Object.keys(COMPONENT).reverse());
  const newest = RELEASES[RELEASES.length - 1];
  expect(newest.scope).toBe('Cluster');
  expect(newest.versions.find((v) => v.storage)?.name).toBe('v1');
});

test('refuses what a cluster would: an unknown or misspelt field, a namespace on a cluster-scoped object', () => {
  const newest = RELEASES[RELEASES.length - 1];
  const bad = {
    apiVersion: `${newest.group}/v1`,
    kind: 'SeccompProfile',
    metadata: { name: 'x', namespace: 'fhirguard' },
    spec: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ name: ['read'], action: 'SCMP_ACT_ALLOW' }] },
  };
  expect(refusals(newest, bad)).toEqual([
    expect.stringContaining('cluster-scoped, but given namespace fhirguard'),
    expect.stringContaining("must have required property 'names'"),
    expect.stringContaining('must NOT have additional properties (name)'),
  ]);
});

describe.each(RELEASES.map((r) => [r.release, r] as const))('SPO %s', (_name, release) => {
  const { objects, dir } = renderFor(release);
  const profiles = objects.filter((o) => o.kind === 'SeccompProfile');
  const workers = objects.filter((o) => o.kind === 'Deployment' && o.spec.template.metadata.labels['app.kubernetes.io/component'] === 'worker');

  it('accepts every SeccompProfile: a served version, the right scope, the CRD schema', () => {
    expect(profiles.length).toBeGreaterThan(0);
    expect(profiles.flatMap((p) => refusals(release, p))).toEqual([]);
  });

  it('runs each worker under its tier profile, named by the path this release installs it at', () => {
    expect(workers.length).toBeGreaterThan(0);
    for (const d of workers) {
      const tier = d.spec.template.metadata.labels['fhirguard.io/tier'];
      const profile = profiles.find((p) => p.metadata.labels['fhirguard/tier'] === tier) as K8sObject;
      const worker = d.spec.template.spec.containers.find((c: any) => c.name === 'worker');
      expect({ tier, seccomp: worker.securityContext.seccompProfile }).toEqual({ tier, seccomp: { type: 'Localhost', localhostProfile: installedAt(release, profile) } });
      // A namespaced profile is only installed for pods of its own namespace.
      if (release.scope === 'Namespaced') expect(profile.metadata.namespace).toBe(d.metadata.namespace);
    }
  });

  const kubectl = kubectlKustomize(dir);
  (kubectl ? it : it.skip)('renders as `kubectl kustomize` does (skipped where kubectl is not installed)', () => {
    expect(comparable(objects, ['fhirguard-policy'])).toEqual(comparable(kubectl as K8sObject[], ['fhirguard-policy']));
  });
});

describe('fhirguard profile export --format spo', () => {
  const set = loadProfileSet(join(REPO, 'profiles'));
  const exported = (spoApi: SpoApi): K8sObject[] => exportProfiles(set, 'spo', { spoApi }).files.map((f) => parseYaml(f.content));

  it.each([
    ['v1', ['v1.0.0']],
    ['v1beta1', ['v0.9.0', 'v0.10.1', 'v1.0.0']],
  ] as const)('--spo-api %s writes objects SPO %j accepts as they are', (api, releases) => {
    const objects = exported(api);
    expect(objects.map((o) => o.apiVersion)).toEqual(objects.map(() => `security-profiles-operator.x-k8s.io/${api}`));
    for (const r of RELEASES.filter((x) => (releases as readonly string[]).includes(x.release))) expect(objects.flatMap((o) => refusals(r, o))).toEqual([]);
  });

  it('defaults to v1, which SPO before 1.0 refuses (the reason for --spo-api v1beta1)', () => {
    const objects = exportProfiles(set, 'spo').files.map((f) => parseYaml(f.content));
    const old = RELEASES.find((r) => r.release === 'v0.10.1') as Release;
    expect(objects.every((o) => o.apiVersion.endsWith('/v1'))).toBe(true);
    expect(refusals(old, objects[0])).toEqual([expect.stringContaining('is not served')]);
  });
});
