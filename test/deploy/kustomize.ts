// deploy/kubernetes as the cluster receives it: the kustomization's resources, its
// generated ConfigMaps and its namespace patch, applied the way `kubectl apply -k` does for
// the small subset of kustomize the kustomization uses (anything else fails loudly here),
// and a strict schema check of each built-in object against the Kubernetes API types.

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import ts from 'typescript';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

/* eslint-disable @typescript-eslint/no-explicit-any */
export type K8sObject = Record<string, any> & { apiVersion: string; kind: string; metadata: Record<string, any> };

export interface Rendered {
  kustomization: Record<string, any>;
  objects: Array<K8sObject & { __file: string }>;
}

export function render(dir: string): Rendered {
  const kustomization = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const known = new Set(['apiVersion', 'kind', 'resources', 'configMapGenerator', 'patches', 'images']);
  for (const k of Object.keys(kustomization)) if (!known.has(k)) throw new Error(`kustomization field ${k} is not rendered by this test`);
  const objects: Rendered['objects'] = [];
  for (const file of kustomization.resources as string[]) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj !== null) objects.push({ ...obj, __file: file });
    }
  }
  for (const g of kustomization.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of g.files as string[]) data[basename(f)] = readFileSync(join(dir, f), 'utf8');
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name, namespace: g.namespace }, data, __file: 'kustomization.yaml' });
  }
  for (const p of kustomization.patches ?? []) {
    const ops = parseYaml(p.patch) as Array<{ op: string; path: string; value: unknown }>;
    for (const o of objects) {
      const [group] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : [''];
      if (p.target.kind && p.target.kind !== o.kind) continue;
      if (p.target.group !== undefined && p.target.group !== group) continue;
      for (const op of ops) {
        const m = /^\/metadata\/(\w+)$/.exec(op.path);
        if (op.op !== 'add' || !m) throw new Error(`patch ${op.op} ${op.path} is not rendered by this test`);
        o.metadata[m[1]] = op.value;
      }
    }
  }
  return { kustomization, objects };
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
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022, types: [] };
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
    const object = source.split('\n').slice(0, line + 1).reverse().find((l) => l.startsWith('// ')) ?? '';
    return `${object.slice(3)}: ${msg}`;
  });
}
