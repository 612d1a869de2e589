// Reference.reference formats and targets. A reference is local (`#id`, resolved against
// the container's contained resources by the walker), a `urn:uuid:`/`urn:oid:` (resolved
// inside the enclosing Bundle by bundle-rules.ts), relative (`Type/id[/_history/vid]`, or
// `Type?criteria` in transactions), or an absolute URL; the type it names must be one the
// element allows.

import type { IssueCode } from '../outcome';
import { clip } from './primitives';

export interface LocalRef {
  ref: string;
  location: string;
  /** A Reference.reference (ref-1) rather than a canonical or uri. */
  reference?: boolean;
}

export interface ReferenceProblem {
  code: IssueCode;
  diagnostics: string;
  /** The Reference's child the problem is about. */
  field?: string;
}

const ID = '[A-Za-z0-9\\-.]{1,64}';
const RELATIVE_RE = new RegExp(`^([A-Za-z]+)/(${ID})(/_history/${ID})?$`);
const CONDITIONAL_RE = /^([A-Za-z]+)\?\S+$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const REST_TAIL_RE = new RegExp(`/([A-Z][A-Za-z]+)/(${ID})(/_history/${ID})?$`);
export const UUID_URN_RE = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const OID_URN_RE = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;

/** The resource type a reference string names, '' when it names none, or a problem. */
export function referencedType(ref: string, isResourceType: (name: string) => boolean): string | ReferenceProblem {
  if (ref.startsWith('#')) return '';
  if (ref.startsWith('urn:uuid:')) {
    return UUID_URN_RE.test(ref) ? '' : { code: 'value', diagnostics: `'${clip(ref)}' is not a valid urn:uuid`, field: 'reference' };
  }
  if (ref.startsWith('urn:oid:')) {
    return OID_URN_RE.test(ref) ? '' : { code: 'value', diagnostics: `'${clip(ref)}' is not a valid urn:oid`, field: 'reference' };
  }
  if (SCHEME_RE.test(ref)) {
    if (/\s/.test(ref)) return { code: 'value', diagnostics: `'${clip(ref)}' is not a valid URL`, field: 'reference' };
    const m = REST_TAIL_RE.exec(ref.split('?')[0]);
    return m && isResourceType(m[1]) ? m[1] : '';
  }
  const m = RELATIVE_RE.exec(ref) ?? CONDITIONAL_RE.exec(ref);
  if (!m) {
    return {
      code: 'value',
      diagnostics: `'${clip(ref)}' is not a valid reference (expected Type/id, #id, urn:uuid:..., or an absolute URL)`,
      field: 'reference',
    };
  }
  if (!isResourceType(m[1])) {
    return { code: 'value', diagnostics: `'${clip(ref)}' names an unknown resource type '${clip(m[1])}'`, field: 'reference' };
  }
  return m[1];
}

/** Checks one Reference's `reference` and `type` against the element's allowed targets. */
export function checkReferenceTarget(v: Record<string, unknown>, targets: readonly string[] | undefined, isResourceType: (name: string) => boolean): ReferenceProblem | undefined {
  // Profiles may name targets by profile rather than type: then only the format is checked.
  const typed = targets && targets.every(isResourceType) ? targets : undefined;
  let refType = '';
  if (typeof v.reference === 'string' && v.reference.length > 0) {
    const t = referencedType(v.reference, isResourceType);
    if (typeof t !== 'string') return t;
    refType = t;
    if (refType && typed && !typed.includes(refType)) {
      return {
        code: 'structure',
        diagnostics: `a reference to ${refType} is not allowed here (allowed: ${typed.join(', ')})`,
        field: 'reference',
      };
    }
  }
  if (typeof v.type === 'string') {
    const name = v.type.startsWith('http://hl7.org/fhir/StructureDefinition/') ? v.type.slice(40) : v.type;
    if (isResourceType(name)) {
      if (typed && !typed.includes(name)) {
        return { code: 'structure', diagnostics: `type ${name} is not allowed here (allowed: ${typed.join(', ')})`, field: 'type' };
      }
      if (refType && refType !== name) {
        return { code: 'value', diagnostics: `type ${name} contradicts the reference to ${refType}`, field: 'type' };
      }
    }
  }
  return undefined;
}
