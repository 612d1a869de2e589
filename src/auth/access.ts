// Whether a token's scopes let a request through, decided before anything is sent: every type
// the request reads or writes (needs.ts) must be granted. A grant comes from a `user/` or
// `system/` scope (unrestricted), from a `patient/` scope (only inside the launch patient's
// compartment: the request is then restricted to it, see compartment-access.ts), or from a
// granular scope (a search of its type narrowed by the scope's query).

import type { Interaction } from '../fhir/interaction';
import type { Identity } from './identity';
import { needsOf, primaryVia } from './needs';
import { ANY, granularFor, grants, type GranularGrant, permLetters } from './scopes';
import { insufficientScope } from './auth-errors';

export interface Access {
  /** Set when a patient/ scope grants something the request needs: all of it stays in this patient's compartment. */
  patient?: string;
  /** Parameters a granular scope adds to the search (name, raw value), ANDed with the client's own. */
  narrowing?: Array<[string, string]>;
}

const UNRESTRICTED: Access = Object.freeze({});

function typeName(type: string): string {
  return type === ANY ? 'every resource type' : type;
}

function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The granular grants a search of `need.type` can be narrowed by; throws when they cannot be combined into one query. */
function narrowingOf(options: GranularGrant[], i: Interaction): Array<[string, string]> {
  // The client's query already holds every parameter of one scope: nothing to add.
  for (const g of options) {
    if (g.params.every(([name, value]) => i.params.some((p) => p.name === name && p.modifier === undefined && p.value === decoded(value)))) return [];
  }
  // Scopes that each name the same single parameter combine into one alternative list (FHIR's comma is OR).
  const names = new Set(options.map((g) => (g.params.length === 1 ? g.params[0][0] : '')));
  if (names.size === 1 && !names.has('')) {
    const [name] = names;
    return [[name, options.map((g) => g.params[0][1]).join(',')]];
  }
  if (options.length === 1) return options[0].params.map(([n, v]) => [n, v]);
  throw insufficientScope(
    `the ${primaryVia(i)} is granted only by granular scopes that cannot be combined into one search (${options.map((g) => g.scope).join(', ')}): add the parameters of one of them to the query`,
    options.map((g) => g.scope),
  );
}

/**
 * What `who` may do with `i`: unrestricted, restricted to its launch patient's compartment, or
 * narrowed by a granular scope. Throws a 403 insufficient_scope naming the first need no scope
 * grants.
 */
export function authorize(i: Interaction, who: Identity): Access {
  const needs = needsOf(i);
  if (needs.length === 0) return UNRESTRICTED;
  const g = who.grants;
  let patient: string | undefined;
  let narrowing: Array<[string, string]> | undefined;
  for (const need of needs) {
    if (grants(g.user, need.type, need.perms) || grants(g.system, need.type, need.perms)) continue;
    if (who.patient !== undefined && grants(g.patient, need.type, need.perms)) {
      patient = who.patient;
      continue;
    }
    // Granular scopes narrow the search of the request's own type only: what a search reaches
    // beyond it, or a read by id, cannot be narrowed before it is sent.
    if (need.primary && i.kind === 'search-type') {
      const unrestricted = [...granularFor(g.user, need.type, need.perms), ...granularFor(g.system, need.type, need.perms)];
      const patientScoped = who.patient !== undefined ? granularFor(g.patient, need.type, need.perms) : [];
      if (unrestricted.length > 0 || patientScoped.length > 0) {
        narrowing = narrowingOf(unrestricted.length > 0 ? unrestricted : patientScoped, i);
        if (unrestricted.length === 0) patient = who.patient;
        continue;
      }
    }
    const wanted = `${permLetters(need.perms)} on ${typeName(need.type)}`;
    const via = need.via ?? primaryVia(i);
    const hasPatientScope = who.patient === undefined && grants(g.patient, need.type, need.perms);
    throw insufficientScope(
      hasPatientScope
        ? `the ${via} is granted only by patient/ scopes, and the token names no launch patient`
        : `the ${via} needs a scope granting ${wanted} (e.g. user/${need.type === ANY ? '*' : need.type}.${permLetters(need.perms)}); the token's scopes do not`,
      [`user/${need.type === ANY ? '*' : need.type}.${permLetters(need.perms)}`],
    );
  }
  if (patient === undefined && narrowing === undefined) return UNRESTRICTED;
  return { ...(patient !== undefined ? { patient } : {}), ...(narrowing && narrowing.length > 0 ? { narrowing } : {}) };
}
