// GET /metadata: a CapabilityStatement that states exactly what this worker implements,
// derived from the same tables the request handlers use (indexed parameters, operations,
// read-only mode), built once at start and served as a constant string.

import { R4_RESOURCE_TYPES } from '../../fhir/r4-resource-types';
import { indexedParamsOf } from '../indexing/params';
import { MAX_COUNT } from '../search/parse';
import { OPERATIONS } from './operations';

const READ_INTERACTIONS = ['read', 'vread', 'history-instance', 'history-type', 'search-type'];
const WRITE_INTERACTIONS = ['create', 'update', 'patch', 'delete'];

export function capabilityStatement(readOnly: boolean, started: Date): Record<string, unknown> {
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
      searchParam: [
        { name: '_id', type: 'token' },
        { name: '_lastUpdated', type: 'date' },
        ...params.map((p) => ({ name: p.code, type: p.type })),
      ],
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
      description: readOnly
        ? 'fhirguard reference FHIR worker, read-only: reads, searches, history and operations that do not write'
        : 'fhirguard reference FHIR worker over SQLite',
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
          `_count (at most ${MAX_COUNT}) and _offset paging, _sort, _include (the searchInclude values) and _revinclude ` +
          '(any [type]:[reference parameter] whose targets include the searched type; not listed per type, as that list ' +
          'repeats every reference parameter under each of its targets), neither with :iterate; ' +
          '_summary=count, _total, _elements. Unknown or unsupported parameters are refused (400). ' +
          'Transactions are atomic; urn:uuid fullUrls and conditional references are resolved.',
        resource: resources,
        interaction: [...(readOnly ? [] : [{ code: 'transaction' }, { code: 'batch' }]), { code: 'history-system' }],
        compartment: ['http://hl7.org/fhir/CompartmentDefinition/patient'],
      },
    ],
  };
}
