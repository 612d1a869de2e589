// No deploy file pulls an image from a public registry by a name this project does not
// control. fhirguard's own images are named registry.invalid/fhirguard/<target> (the .invalid
// TLD never resolves, RFC 6761): nothing is pulled until the operator names a registry, which
// kustomize's images: does; compose builds them and never pulls. The only public images are
// the third-party ones listed below, from their publishers' own namespaces, named in full.
// Checked on every YAML file under deploy/ as written, on the Kubernetes base rendered with
// each SPO component (and by `kubectl kustomize` where installed), and on the Dockerfile's bases.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseDockerfile } from './dockerfile';
import { imageFields, isPublicRegistry, registryHost, repository } from './images';
import { containersOf, kubectlKustomize, overlay, render } from './kustomize';

const REPO = resolve(__dirname, '..', '..');
const DEPLOY = join(REPO, 'deploy');
const K8S = join(DEPLOY, 'kubernetes');
const PLACEHOLDER = 'registry.invalid';
const TARGETS = parseDockerfile(join(REPO, 'Dockerfile')).map((s) => s.name);

/** Public images allowed, each a publisher's own repository: host/repository. */
const THIRD_PARTY = new Set([
  'docker.io/prom/prometheus', // the Prometheus project (deploy/compose.yaml)
  'docker.io/grafana/grafana', // Grafana Labs (deploy/compose.yaml)
  'docker.io/library/node', // Docker official image: the Dockerfile's builder and runtime bases
  'docker.io/library/debian', // Docker official image: the bridge's base
]);

/** Why an image reference is not acceptable in a shipped file, or undefined. */
function problem(ref: string): string | undefined {
  const host = registryHost(ref);
  const repo = repository(ref);
  if (repo.startsWith('fhirguard/') || repo === 'fhirguard') {
    return host === PLACEHOLDER && TARGETS.includes(repo.slice('fhirguard/'.length))
      ? undefined
      : `${ref}: fhirguard's images are ${PLACEHOLDER}/fhirguard/<Dockerfile target> until the operator names a registry`;
  }
  if (!isPublicRegistry(host)) return host === PLACEHOLDER ? undefined : `${ref}: ${host} is not a registry these files may name`;
  if (!ref.startsWith(`${host}/`)) return `${ref}: third-party images are named with their registry host (${host}/${repo})`;
  if (!THIRD_PARTY.has(`${host}/${repo}`)) return `${ref}: resolves to the public registry ${host}`;
  if (!/:[^/]+$/.test(ref.split('@')[0]) && !ref.includes('@')) return `${ref}: pin a version`;
  return undefined;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f));
}

const tmp = mkdtempSync(join(tmpdir(), 'fg-images-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The Kubernetes base with a component (or none) and image overrides, as an overlay directory. */
function overlayDir(name: string, components: string[], images: Array<Record<string, string>> = []): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    overlay(
      dir,
      K8S,
      components.map((c) => join(K8S, c)),
      images,
    ),
  );
  return dir;
}

const renderedImages = (objects: Array<Record<string, any>>): string[] => objects.flatMap((o) => containersOf(o as never).map((c) => c.image as string));

describe('image references', () => {
  test('resolve the way container runtimes resolve them', () => {
    expect(['fhirguard/agent', 'node:22', 'docker.io/prom/prometheus:v3', 'ghcr.io/x/y', 'registry.invalid/fhirguard/agent:0.1.0', 'localhost/a', 'reg:5000/a'].map(registryHost)).toEqual([
      'docker.io',
      'docker.io',
      'docker.io',
      'ghcr.io',
      'registry.invalid',
      'localhost',
      'reg:5000',
    ]);
    expect(repository('node:22-bookworm')).toBe('library/node');
    expect(repository('registry.invalid/fhirguard/agent:0.1.0')).toBe('fhirguard/agent');
  });

  test('the check refuses what it must: unqualified, public-registry and untagged third-party names', () => {
    expect(
      ['fhirguard/agent', 'docker.io/fhirguard/agent:0.1.0', 'ghcr.io/fhirguard/agent', 'quay.io/x/y:1', 'busybox', 'docker.io/prom/prometheus', 'prom/prometheus:v3.5.0'].map(
        (r) => problem(r) !== undefined,
      ),
    ).toEqual([true, true, true, true, true, true, true]);
    expect(problem('registry.invalid/fhirguard/agent:0.1.0')).toBeUndefined();
  });
});

describe('no deploy file names an image that resolves to a public registry', () => {
  test.each(yamlFiles(DEPLOY).map((f) => [f.slice(REPO.length + 1), f]))('%s as written', (_rel, file) => {
    const images = parseAllDocuments(readFileSync(file, 'utf8')).flatMap((d) => imageFields(d.toJS()));
    expect(images.map(problem).filter(Boolean)).toEqual([]);
  });

  test.each([
    ['the Kubernetes base', []],
    ['with the spo-0.9 component', ['spo-0.9']],
    ['with the spo-0.8 component', ['spo-0.8']],
  ])('%s, rendered', (name, components) => {
    const dir = overlayDir(name.replace(/\W+/g, '-'), components);
    const images = renderedImages(render(dir).objects);
    expect(images.length).toBeGreaterThan(0);
    expect(images.map(problem).filter(Boolean)).toEqual([]);
    expect(images.every((i) => registryHost(i) === PLACEHOLDER)).toBe(true);
    const kubectl = kubectlKustomize(dir);
    if (kubectl) expect(renderedImages(kubectl).sort()).toEqual([...images].sort());
  });

  test("the Dockerfile's base images", () => {
    const stages = parseDockerfile(join(REPO, 'Dockerfile'));
    const bases = stages.map((s) => s.base).filter((b) => !stages.some((s) => s.name === b));
    expect(bases.length).toBeGreaterThan(0);
    expect(bases.map(problem).filter(Boolean)).toEqual([]);
  });
});

test("an operator's overlay that sets the registry replaces every fhirguard image", () => {
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
  const images = ['proxy', 'worker', 'bridge', 'agent'].map((t) => ({ name: `${PLACEHOLDER}/fhirguard/${t}`, newName: `registry.example.org/fhirguard/${t}` }));
  const dir = overlayDir('operator', [], images);
  const rendered = renderedImages(render(dir).objects);
  expect(rendered.filter((i) => !/^registry\.example\.org\/fhirguard\/(proxy|worker|bridge|agent):/.test(i))).toEqual([]);
  expect(new Set(rendered.map((i) => i.split(':').pop()))).toEqual(new Set([version]));
  const kubectl = kubectlKustomize(dir);
  if (kubectl) expect(renderedImages(kubectl).sort()).toEqual([...rendered].sort());
});
