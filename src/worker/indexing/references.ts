// Literal references as the worker stores and searches them. Only relative references
// (`Patient/123`, optionally with `/_history/2`) point into this server; absolute URLs are
// kept as text and matched as text, so a reference to another server never matches a local
// resource by accident.

import { isResourceType } from '../../fhir/search-parameters';

export const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;

export interface LocalReference {
  type: string;
  id: string;
  version?: string;
}

export function parseLocalReference(reference: string): LocalReference | undefined {
  const parts = reference.split('/');
  if (parts.length !== 2 && parts.length !== 4) return undefined;
  const [type, id] = parts;
  if (!isResourceType(type) || !ID_RE.test(id)) return undefined;
  if (parts.length === 4) {
    if (parts[2] !== '_history' || !ID_RE.test(parts[3])) return undefined;
    return { type, id, version: parts[3] };
  }
  return { type, id };
}
