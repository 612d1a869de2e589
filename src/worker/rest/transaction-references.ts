// Inside a transaction, entries refer to each other by fullUrl (`urn:uuid:...`, or an
// absolute URL) and to existing resources by search (`Patient?identifier=x|1`). Before any
// entry is stored, every such reference is rewritten to the literal `Type/id` it resolves to
// (R4 http §3.1.0.11.2): in Reference.reference, in the narrative's links, and in entry URLs.

import { refuse } from '../../fhir/outcome';
import { isResourceType } from '../../fhir/search-parameters';
import type { Json } from '../storage/store';

/** Resolves `Type?criteria` to the one matching id, or throws (404 none, 412 several). */
export type ConditionalResolver = (type: string, query: [string, string][]) => string;

const URN_RE = /urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g;

function resolveReference(ref: string, map: ReadonlyMap<string, string>, resolve: ConditionalResolver, where: string): string {
  const mapped = map.get(ref);
  if (mapped) return mapped;
  if (ref.startsWith('urn:uuid:') || ref.startsWith('urn:oid:')) {
    throw refuse(400, 'unresolved-reference', 'not-found', `${where}: the reference '${ref}' is not the fullUrl of any entry of the transaction`);
  }
  const q = ref.indexOf('?');
  if (q > 0 && isResourceType(ref.slice(0, q))) {
    const type = ref.slice(0, q);
    return `${type}/${resolve(type, [...new URLSearchParams(ref.slice(q + 1))])}`;
  }
  return ref;
}

/** Rewrites references in a resource (in place). */
export function rewriteReferences(value: unknown, map: ReadonlyMap<string, string>, resolve: ConditionalResolver, where: string): void {
  if (Array.isArray(value)) {
    for (const item of value) rewriteReferences(item, map, resolve, where);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const obj = value as Json;
  for (const [key, v] of Object.entries(obj)) {
    if (key === 'reference' && typeof v === 'string') obj[key] = resolveReference(v, map, resolve, where);
    else if (key === 'div' && typeof v === 'string') obj[key] = rewriteText(v, map);
    else if (v && typeof v === 'object') rewriteReferences(v, map, resolve, where);
  }
}

/** Replaces mapped urn:uuid fullUrls inside free text (narrative, entry URLs). */
export function rewriteText(text: string, map: ReadonlyMap<string, string>): string {
  return text.replace(URN_RE, (urn) => map.get(urn) ?? urn);
}
