// SMART on FHIR clinical scopes, parsed once per token into a table of what each context may
// do to each type. Both versions of the App Launch scope syntax are read:
//   2.x  patient/Observation.rs, user/*.cruds, system/Patient.r,
//        patient/Observation.rs?category=http://...|laboratory (granular)
//   1.x  patient/Observation.read, user/*.write, system/*.*
// Scopes that are not clinical (openid, fhirUser, launch, offline_access...) or that name a
// type R4 does not define grant nothing here; a malformed clinical scope grants nothing
// either, and is reported so the operator can see why a client got less than it asked for.

import { isResourceType } from '../fhir/search-parameters';

/** A permission of SMART 2.x, as a bit. */
export const PERM = { c: 1, r: 2, u: 4, d: 8, s: 16 } as const;
export type PermLetter = keyof typeof PERM;

export const CONTEXTS = ['patient', 'user', 'system'] as const;
export type ScopeContext = (typeof CONTEXTS)[number];

/** The type key of a wildcard scope (`patient/*.rs`). */
export const ANY = '*';

/** A granular scope: the permissions it grants, only for resources matching its query. */
export interface GranularGrant {
  perms: number;
  /** The query's parameters, as name and raw (still encoded) value. */
  params: ReadonlyArray<readonly [string, string]>;
  /** The scope as written. */
  scope: string;
}

/** What one context of a token grants. */
export interface ContextGrants {
  /** Type (or ANY) → permission bits granted without condition. */
  readonly perms: Map<string, number>;
  /** Type (or ANY) → granular grants. */
  readonly granular: Map<string, GranularGrant[]>;
}

export interface Grants {
  readonly patient: ContextGrants;
  readonly user: ContextGrants;
  readonly system: ContextGrants;
  /** Clinical-looking scopes that could not be read, with why. */
  readonly malformed: string[];
}

const V1: Readonly<Record<string, number>> = { read: PERM.r | PERM.s, write: PERM.c | PERM.u | PERM.d, '*': PERM.c | PERM.r | PERM.u | PERM.d | PERM.s };
const V2 = /^c?r?u?d?s?$/;
const CLINICAL = /^(patient|user|system)\/([^.?]+)\.([^?]+)(?:\?(.*))?$/;

function emptyContext(): ContextGrants {
  return { perms: new Map(), granular: new Map() };
}

/** The permission bits of a 2.x `cruds` string or a 1.x `read`/`write`/`*`; undefined when it is neither. */
function permsOf(text: string): number | undefined {
  const v1 = V1[text];
  if (v1 !== undefined) return v1;
  if (text === '' || !V2.test(text)) return undefined;
  let bits = 0;
  for (const letter of text) bits |= PERM[letter as PermLetter];
  return bits;
}

function queryParams(query: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    out.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  return out;
}

/** Parses a token's `scope` (space-separated) into its grants. */
export function parseScopes(scopes: readonly string[]): Grants {
  const grants: Grants = { patient: emptyContext(), user: emptyContext(), system: emptyContext(), malformed: [] };
  for (const scope of scopes) {
    const m = CLINICAL.exec(scope);
    if (!m) continue;
    const [, context, type, permText, query] = m;
    if (type !== ANY && !isResourceType(type)) continue;
    const perms = permsOf(permText);
    if (perms === undefined) {
      grants.malformed.push(`${scope}: '${permText}' is neither SMART 2 permissions (c, r, u, d, s in that order) nor read, write or *`);
      continue;
    }
    const into = grants[context as ScopeContext];
    if (query === undefined) {
      into.perms.set(type, (into.perms.get(type) ?? 0) | perms);
      continue;
    }
    const params = query === '' ? undefined : queryParams(query);
    if (!params) {
      grants.malformed.push(`${scope}: the query of a granular scope must be name=value pairs`);
      continue;
    }
    const list = into.granular.get(type) ?? [];
    list.push({ perms, params, scope });
    into.granular.set(type, list);
  }
  return grants;
}

/** Whether `context` grants every bit of `perms` on `type` without condition. */
export function grants(context: ContextGrants, type: string, perms: number): boolean {
  return (((context.perms.get(type) ?? 0) | (context.perms.get(ANY) ?? 0)) & perms) === perms;
}

/** The granular grants of `context` on `type` that include every bit of `perms`. */
export function granularFor(context: ContextGrants, type: string, perms: number): GranularGrant[] {
  const out: GranularGrant[] = [];
  for (const key of [type, ANY]) for (const g of context.granular.get(key) ?? []) if ((g.perms & perms) === perms) out.push(g);
  return out;
}

/** `rs` for PERM.r | PERM.s: the letters of `perms` in SMART's order. */
export function permLetters(perms: number): string {
  return (Object.keys(PERM) as PermLetter[]).filter((l) => perms & PERM[l]).join('');
}
