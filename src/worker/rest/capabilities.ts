// GET /metadata: a CapabilityStatement that states exactly what this worker implements,
// derived from the same tables the request handlers use (indexed parameters, operations,
// read-only mode), built once at start and served as a constant string.

import { R4_RESOURCE_TYPES } from '../../fhir/r4-resource-types';
import { indexedParamsOf } from '../indexing/params';
import { MAX_COUNT } from '../search/parse';
import { OPERATIONS } from './operations';

const READ_INTERACTIONS = ['read', 'vread', 'history-instance', 'history-type', 'search-type'];
const WRITE_INTERACTIONS = ['create', 'update', 'patch', 'delete'];

/** Per target type, the `Source:param` reference parameters that can point at it (what _revinclude takes). */
function revIncludesByTarget(): Map<string, string[]> {
  const byTarget = new Map<string, string[]>();
  for (const source of R4_RESOURCE_TYPES) {
    for (const p of indexedParamsOf(source)) {
      if (p.type !== 'reference') continue;
      for (const target of p.targets) {
        const list = byTarget.get(target) ?? [];
        list.push(`${source}:${p.code}`);
        byTarget.set(target, list);
      }
    }
  }
  return byTarget;
}

export function capabilityStatement(readOnly: boolean, started: Date): Record<string, unknown> {
  const revIncludes = revIncludesByTarget();
  const interactions = [...READ_INTERACTIONS, ...(readOnly ? [] : WRITE_INTERACTIONS)].sort().map((code) => ({ code }));
  const resources = R4_RESOURCE_TYPES.map((type) => {
    const params = indexedParamsOf(type);
    const operations = Object.values(OPERATIONS)
      .filter((op) => op.types === '*' || (op.types as readonly string[]).includes(type))
      .map((op) => ({ name: op.name.slice(1), definition: op.definition }));
    return {
      type,
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: interactions,
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: !readOnly,
      conditionalCreate: !readOnly,
      conditionalRead: 'not-supported',
      conditionalUpdate: !readOnly,
      conditionalDelete: readOnly ? 'not-supported' : 'single',
      referencePolicy: ['literal'],
      searchInclude: params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
      searchRevInclude: revIncludes.get(type) ?? [],
      searchParam: [{ name: '_id', type: 'token' }, { name: '_lastUpdated', type: 'date' }, ...params.map((p) => ({ name: p.code, type: p.type }))],
      operation: operations,
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: started.toISOString(),
    publisher: 'fhirguard',
    kind: 'instance',
    software: { name: 'fhirguard reference worker' },
    implementation: {
      description: readOnly ? 'fhirguard reference FHIR worker, read-only: reads, searches, history and operations that do not write' : 'fhirguard reference FHIR worker over SQLite',
    },
    fhirVersion: '4.0.1',
    format: ['json'],
    ...(readOnly ? {} : { patchFormat: ['application/json-patch+json'] }),
    rest: [
      {
        mode: 'server',
        documentation:
          'Search: string (:exact, :contains), token (:not, :text, system|code), reference (:[type], chained, _has), ' +
          'date/number/quantity (eq ne gt lt ge le sa eb ap), uri (:below, :above), :missing on all; ' +
          `_count (at most ${MAX_COUNT}) and _offset paging, _sort, _include and _revinclude (the searchInclude and ` +
          'searchRevInclude values), neither with :iterate; ' +
          '_summary=count, _total, _elements. Unknown or unsupported parameters are refused (400). ' +
          'Transactions are atomic; urn:uuid fullUrls and conditional references are resolved.',
        resource: resources,
        interaction: [...(readOnly ? [] : [{ code: 'transaction' }, { code: 'batch' }]), { code: 'history-system' }],
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
      },
    ],
  };
}
