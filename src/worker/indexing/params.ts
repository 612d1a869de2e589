// The search parameters the worker indexes, per resource type: every R4 SearchParameter of a
// kind the worker can index and search (string, token, reference, date, number, quantity,
// uri) with its FHIRPath expression narrowed to that type and parsed once. The tables are
// built at start; a write evaluates the type's list, a search looks a code up in a map.
// Composite and special parameters, and the ones without an expression (`_text`, `_content`,
// `_list`, `_query`), are not indexed: the search parser refuses them and /metadata leaves
// them out. `_id` and `_lastUpdated` are columns of the resources table, not index rows.

import { getExpressionForResourceType, parseFhirPath } from '@medplum/core';
import { R4_RESOURCE_TYPES } from '../../fhir/r4-resource-types';
import { searchParamsOf } from '../../fhir/search-parameters';

export type IndexedParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri';

const INDEXED_TYPES: ReadonlySet<string> = new Set(['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri']);

/** Handled by columns of the resources table rather than by index rows. */
const COLUMN_PARAMS: ReadonlySet<string> = new Set(['_id', '_lastUpdated']);

export interface IndexedParam {
  code: string;
  type: IndexedParamType;
  /** The definition's expression narrowed to one resource type. */
  expression: string;
  atom: ReturnType<typeof parseFhirPath>;
  /** For references: the types the reference may point to. */
  targets: readonly string[];
}

let byType: Map<string, { list: IndexedParam[]; byCode: Map<string, IndexedParam> }> | undefined;

/** `Resource.meta.tag` is written for every type; FHIRPath needs the concrete type's name. */
function expressionFor(resourceType: string, expression: string): string | undefined {
  const generic = /^(Resource|DomainResource)\./.exec(expression);
  if (generic) return resourceType + expression.slice(generic[1].length);
  return getExpressionForResourceType(resourceType, expression);
}

function build(): NonNullable<typeof byType> {
  const out: NonNullable<typeof byType> = new Map();
  for (const resourceType of R4_RESOURCE_TYPES) {
    const list: IndexedParam[] = [];
    for (const def of searchParamsOf(resourceType).values()) {
      if (!INDEXED_TYPES.has(def.type) || COLUMN_PARAMS.has(def.code) || !def.expression) continue;
      const expression = expressionFor(resourceType, def.expression);
      if (!expression) continue;
      list.push({
        code: def.code,
        type: def.type as IndexedParamType,
        expression,
        atom: parseFhirPath(expression),
        targets: def.targets,
      });
    }
    out.set(resourceType, { list, byCode: new Map(list.map((p) => [p.code, p])) });
  }
  return out;
}

function tables(): NonNullable<typeof byType> {
  byType ??= build();
  return byType;
}

/** Parses every expression now, so a bad one fails the start rather than a request. */
export function loadIndexedParams(): void {
  tables();
}

export function indexedParamsOf(resourceType: string): readonly IndexedParam[] {
  return tables().get(resourceType)?.list ?? [];
}

export function indexedParam(resourceType: string, code: string): IndexedParam | undefined {
  return tables().get(resourceType)?.byCode.get(code);
}
