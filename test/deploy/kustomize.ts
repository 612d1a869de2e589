// deploy/kubernetes as the cluster receives it: the kustomization's resources (files, and
// directories holding kustomizations), its generated ConfigMaps, its components, JSON patches
// and image overrides, applied the way `kubectl apply -k` does for the subset of kustomize
// these kustomizations use (anything else fails loudly here), and a strict schema check of
// each built-in object against the Kubernetes API types. Where kubectl is installed,
// test/deploy checks this rendering against `kubectl kustomize`.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { applyPatch, type Operation } from 'rfc6902';
import ts from 'typescript';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export type K8sObject = Record<string, any> & { apiVersion: string; kind: string; metadata: Record<string, any> };

export interface Rendered {
  kustomization: Record<string, any>;
  objects: Array<K8sObject & { __file: string }>;
}

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'configMapGenerator', 'patches', 'images']);

function readKustomization(dir: string): Record<string, any> {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  for (const f of Object.keys(k)) if (!KNOWN_FIELDS.has(f)) throw new Error(`${dir}: kustomization field ${f} is not rendered by this test`);
  return k;
}

/** The containers of an object's pod template (workloads) or pod spec, init containers too. */
export function containersOf(o: K8sObject): any[] {
  const pod = o.spec?.template?.spec ?? (o.kind === 'Pod' ? o.spec : undefined);
  return pod ? [...(pod.initContainers ?? []), ...(pod.containers ?? [])] : [];
}

/** An image reference split as kustomize's images transformer matches it. */
export function splitImage(ref: string): { name: string; tag?: string; digest?: string } {
  const [rest, digest] = ref.split('@');
  const colon = rest.lastIndexOf(':');
  const tagged = colon > rest.lastIndexOf('/');
  return { name: tagged ? rest.slice(0, colon) : rest, tag: tagged ? rest.slice(colon + 1) : undefined, digest };
}

function applyImages(objects: K8sObject[], images: Array<Record<string, string>>): void {
  for (const o of objects) {
    for (const c of containersOf(o)) {
      const ref = splitImage(c.image);
      const rule = images.find((i) => i.name === ref.name);
      if (!rule) continue;
      for (const k of Object.keys(rule)) if (!['name', 'newName', 'newTag', 'digest'].includes(k)) throw new Error(`images field ${k} is not rendered by this test`);
      const digest = rule.digest ?? (rule.newTag ? undefined : ref.digest);
      c.image = `${rule.newName ?? ref.name}${(rule.newTag ?? ref.tag) ? `:${rule.newTag ?? ref.tag}` : ''}${digest ? `@${digest}` : ''}`;
    }
  }
}

function applyPatches(dir: string, objects: K8sObject[], patches: any[]): void {
  for (const p of patches) {
    if (typeof p.patch !== 'string' || !p.target) throw new Error(`${dir}: only inline JSON patches with a target are rendered by this test`);
    const ops = parseYaml(p.patch) as Operation[];
    let hits = 0;
    for (const o of objects) {
      const [group] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : [''];
      if (p.target.kind && p.target.kind !== o.kind) continue;
      if (p.target.group !== undefined && p.target.group !== group) continue;
      if (p.target.name && p.target.name !== o.metadata.name) continue;
      const errors = applyPatch(o, ops).filter((e) => e !== null);
      if (errors.length) throw new Error(`${dir}: patch on ${o.kind}/${o.metadata.name}: ${errors.map((e) => e?.message).join('; ')}`);
      hits++;
    }
    if (hits === 0) throw new Error(`${dir}: patch target ${JSON.stringify(p.target)} matches no object`);
  }
}

/** Applies a component's own components, patches and images to objects accumulated so far. */
function applyComponent(dir: string, objects: Rendered['objects']): void {
  const k = readKustomization(dir);
  if (k.kind !== 'Component') throw new Error(`${dir} is not a kustomize Component`);
  if (k.resources?.length || k.configMapGenerator?.length) throw new Error(`${dir}: component resources are not rendered by this test`);
  for (const c of k.components ?? []) applyComponent(join(dir, c), objects);
  applyPatches(dir, objects, k.patches ?? []);
  applyImages(objects, k.images ?? []);
}

export function render(dir: string): Rendered {
  const kustomization = readKustomization(dir);
  if ((kustomization.kind ?? 'Kustomization') !== 'Kustomization') throw new Error(`${dir} is a ${kustomization.kind}, not a Kustomization`);
  const objects: Rendered['objects'] = [];
  for (const entry of kustomization.resources as string[]) {
    const at = join(dir, entry);
    if (statSync(at).isDirectory()) {
      objects.push(...render(at).objects.map((o) => ({ ...o, __file: join(entry, o.__file) })));
      continue;
    }
    for (const doc of parseAllDocuments(readFileSync(at, 'utf8'))) {
      if (doc.errors.length) throw new Error(`${entry}: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj !== null) objects.push({ ...obj, __file: entry });
    }
  }
  for (const g of kustomization.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of g.files as string[]) data[basename(f)] = readFileSync(join(dir, f), 'utf8');
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name, namespace: g.namespace }, data, __file: 'kustomization.yaml' });
  }
  for (const c of kustomization.components ?? []) applyComponent(join(dir, c), objects);
  applyPatches(dir, objects, kustomization.patches ?? []);
  applyImages(objects, kustomization.images ?? []);
  return { kustomization, objects };
}

/** A kustomization text that applies `base` (a directory) with components and image overrides. */
export function overlay(at: string, base: string, components: string[] = [], images: Array<Record<string, string>> = []): string {
  return [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    `resources: [${JSON.stringify(relative(at, base))}]`,
    ...(components.length ? [`components: ${JSON.stringify(components.map((c) => relative(at, c)))}`] : []),
    ...(images.length ? [`images: ${JSON.stringify(images)}`] : []),
    '',
  ].join('\n');
}

/** `kubectl kustomize <dir>` as objects, or undefined where kubectl is not installed. */
export function kubectlKustomize(dir: string): K8sObject[] | undefined {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS())
    .filter((o) => o !== null);
}

/**
 * Objects in a comparable form: sorted by kind, namespace and name, without the test's
 * __file, and with kustomize's content-hash suffix taken off generated ConfigMap names.
 */
export function comparable(objects: K8sObject[], generated: string[]): unknown[] {
  const hashed = new RegExp(`^(${generated.join('|')})-[a-z0-9]{10}$`);
  const strip = (v: any): any =>
    Array.isArray(v)
      ? v.map(strip)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k]) => k !== '__file')
              .map(([k, x]) => [k, strip(x)]),
          )
        : typeof v === 'string'
          ? v.replace(hashed, '$1')
          : v;
  const key = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  return [...objects].sort((a, b) => key(a).localeCompare(key(b))).map(strip);
}

/** The module of kubernetes-models holding a built-in kind, or undefined for custom resources. */
export function modelModule(apiVersion: string, kind: string): string | undefined {
  const builtIn = ['v1', 'apps/v1', 'policy/v1', 'networking.k8s.io/v1', 'rbac.authorization.k8s.io/v1'];
  return builtIn.includes(apiVersion) ? `kubernetes-models/${apiVersion}/${kind}` : undefined;
}

/** Validates with the models' JSON schema (types, enums, required fields). Throws on error. */
export function validateModel(obj: K8sObject): void {
  const mod = modelModule(obj.apiVersion, obj.kind);
  if (!mod) throw new Error(`${obj.apiVersion} ${obj.kind} is not a built-in kind`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Model = require(mod)[obj.kind];
  const { __file, ...plain } = obj as K8sObject & { __file?: string };
  void __file;
  new Model(plain).validate();
}

/**
 * Unknown fields: the models' schemas let them through (as `kubectl apply` without strict
 * validation would), so each object is also type-checked as a TypeScript literal of the API
 * type, where a misspelt or misplaced field is an excess-property error.
 * Returns one line per problem.
 */
export function unknownFields(objects: K8sObject[]): string[] {
  const here = dirname(require.resolve('kubernetes-models/package.json'));
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const mod = modelModule(o.apiVersion, o.kind);
    if (!mod) return;
    const { __file, ...plain } = o as K8sObject & { __file?: string };
    void __file;
    lines.push(`import type { I${o.kind} as T${i} } from ${JSON.stringify(mod)};`);
    lines.push(`// ${o.kind}/${o.metadata.name}`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(plain, null, 1)};`);
  });
  const fileName = join(here, '..', '..', 'fhirguard-manifests.check.ts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.readFile.bind(host);
  const getSource = host.getSourceFile.bind(host);
  host.fileExists = (f) => f === fileName || ts.sys.fileExists(f);
  host.readFile = (f) => (f === fileName ? source : read(f));
  host.getSourceFile = (f, lang, onError, create) => (f === fileName ? ts.createSourceFile(f, source, lang) : getSource(f, lang, onError, create));
  const program = ts.createProgram([fileName], options, host);
  const file = program.getSourceFile(fileName);
  return ts.getPreEmitDiagnostics(program, file).map((d) => {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (!d.file || d.start === undefined) return msg;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const object =
      source
        .split('\n')
        .slice(0, line + 1)
        .reverse()
        .find((l) => l.startsWith('// ')) ?? '';
    return `${object.slice(3)}: ${msg}`;
  });
}
