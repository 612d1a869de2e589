// The contract between classify, policy, validate and route: what one HTTP request means
// as a FHIR R4 interaction. Interaction kinds are the CapabilityStatement codes, so the policy
// file speaks the same words as the FHIR specification.

export const INTERACTION_KINDS = [
  'read',
  'vread',
  'update',
  'patch',
  'delete',
  'history-instance',
  'history-type',
  'history-system',
  'create',
  'search-type',
  'search-system',
  'batch',
  'transaction',
  'capabilities',
  'operation',
] as const;

export type InteractionKind = (typeof INTERACTION_KINDS)[number];

export type InteractionLevel = 'system' | 'type' | 'instance';

/** One search parameter as it appeared in the query (or a `_search` form body). */
export interface SearchParam {
  /** Parameter name without modifier, e.g. `subject` for `subject:Patient.name`. */
  name: string;
  /** Modifier after `:`, e.g. `exact`, `missing`, or a resource type for references. */
  modifier?: string;
  /** Chain after the first `.`, e.g. `name` for `subject:Patient.name`; may itself chain. */
  chain?: string;
  /** The decoded value, as given (comma-separated alternatives not split). */
  value: string;
}

export interface Interaction {
  kind: InteractionKind;
  level: InteractionLevel;
  /** The resource type of the URL (or the compartment's target type for compartment searches). */
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** `$name` of an operation, with the `$`. */
  operation?: string;
  /** Set for compartment searches: `Patient/123/Observation` or `Patient/123/*`. */
  compartment?: { resourceType: string; id: string };
  /** Conditional create (If-None-Exist), update, patch or delete (search criteria in the URL). */
  conditional: boolean;
  /** Search parameters (searches, conditional interactions, histories' `_count`/`_since`). */
  params: SearchParam[];
  /**
   * How many of `params`, at the end, came from a POST `_search` form body. The body is
   * forwarded as sent, so lenient handling cannot drop a parameter from it.
   */
  formParams?: number;
  /** For batch and transaction: every entry's own interaction, in entry order. */
  entries?: Interaction[];
}

/** A resource type label that keeps metric cardinality bounded: only known R4 types pass. */
export function resourceTypeLabel(i: Pick<Interaction, 'resourceType'>): string {
  return i.resourceType ?? '';
}
