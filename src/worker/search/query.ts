// A FHIR search as the worker executes it: conditions (ANDed; each one's values ORed),
// sort keys, paging, includes. Built from query parameters by ./parse.ts, turned into SQL by
// ./sql.ts.

import type { IndexedParam } from '../indexing/params';
import type { TimeRange, NumberRange } from '../indexing/values';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

export type Value =
  | { kind: 'string'; text: string }
  | { kind: 'token'; system?: string | null; code?: string }
  | { kind: 'reference'; type?: string; id?: string; url?: string }
  | { kind: 'date'; prefix: Prefix; range: TimeRange }
  | { kind: 'number'; prefix: Prefix; range: NumberRange }
  | { kind: 'quantity'; prefix: Prefix; range: NumberRange; system?: string; code?: string }
  | { kind: 'uri'; text: string };

export type Condition =
  /** `_id`: the resource's id is one of ids. */
  | { kind: 'id'; ids: string[] }
  /** `_lastUpdated`: the current version's time. */
  | { kind: 'lastUpdated'; values: Extract<Value, { kind: 'date' }>[] }
  | { kind: 'param'; param: IndexedParam; modifier?: string; values: Value[] }
  | { kind: 'missing'; param: IndexedParam; missing: boolean }
  /** `subject:Patient.name=x`: a reference whose target (of one of the types) satisfies inner. */
  | { kind: 'chain'; param: IndexedParam; targets: { type: string; inner: Condition }[] }
  /** `_has:Observation:patient:code=x`: some sourceType resource referring here satisfies inner. */
  | { kind: 'has'; sourceType: string; param: IndexedParam; inner: Condition }
  /** Compartment searches: a reference through one of params points to type/id. */
  | { kind: 'compartment'; params: readonly string[]; type: string; id: string; self: boolean };

export interface SortKey {
  /** `_id`, `_lastUpdated` or an indexed parameter. */
  param: '_id' | '_lastUpdated' | IndexedParam;
  descending: boolean;
}

export interface IncludeSpec {
  /** The type whose reference parameter is followed. */
  sourceType: string;
  param: IndexedParam;
  targetType?: string;
}

export interface SearchRequest {
  type: string;
  conditions: Condition[];
  sort: SortKey[];
  count: number;
  offset: number;
  total: 'none' | 'estimate' | 'accurate';
  summaryCount: boolean;
  elements?: string[];
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  /** The parameters as given minus `_offset`, for paging links. */
  linkParams: [string, string][];
}
