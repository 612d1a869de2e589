// What a request needs a token's scopes to grant: a permission on every type it can read or
// write. The types a search reaches beyond its own (`_include`, `_revinclude`, `_has`,
// chains, `_type`, compartments) are the ones the policy already computes (search-reach.ts),
// so a scope is needed for each of them before anything is sent: no `_include` brings back a
// type the token was not granted. A batch or transaction needs what each entry needs.

import type { Interaction } from '../fhir/interaction';
import { ANY_TYPE } from '../policy/reference-graph';
import { searches, searchReach } from '../policy/search-reach';
import { ANY, PERM } from './scopes';

export interface Need {
  /** A resource type, or ANY: every type (a system-level interaction). */
  type: string;
  /** The permission bits needed (PERM). */
  perms: number;
  /** What needs it, for the refusal's diagnostic (no ids or values); the request itself when absent (primaryVia). */
  via?: string;
  /** The type the request names itself (not one a search reaches). */
  primary: boolean;
}

/**
 * Operations that only read, with the permission each level needs. Any other operation may
 * change data and needs every permission on its type.
 */
const READING_OPERATIONS: ReadonlySet<string> = new Set([
  '$everything',
  '$meta',
  '$lastn',
  '$stats',
  '$expand',
  '$lookup',
  '$validate-code',
  '$translate',
  '$subsumes',
  '$summary',
  '$document',
  '$docref',
  '$validate',
]);

const ALL = PERM.c | PERM.r | PERM.u | PERM.d | PERM.s;

/** The permission bits the interaction needs on its own type; 0: none (capabilities, bundles). */
function primaryPerms(i: Interaction): number {
  // A conditional interaction searches first: it needs `s` on its type as well.
  const cond = i.conditional && i.params.length > 0 ? PERM.s : 0;
  switch (i.kind) {
    case 'read':
    case 'vread':
    case 'history-instance':
      return PERM.r;
    case 'search-type':
    case 'history-type':
    case 'search-system':
    case 'history-system':
      return PERM.s;
    case 'create':
      return PERM.c | cond;
    case 'update':
    case 'patch':
      return PERM.u | cond;
    case 'delete':
      return PERM.d | cond;
    case 'operation':
      if (!READING_OPERATIONS.has(i.operation ?? '$')) return ALL;
      return i.level === 'instance' ? PERM.r : PERM.s;
    case 'capabilities':
    case 'batch':
    case 'transaction':
      return 0;
  }
}

/** What needs the primary permission, for a refusal's diagnostic (no ids or values). */
export function primaryVia(i: Interaction): string {
  const type = i.resourceType ?? ANY;
  const cond = i.conditional && i.params.length > 0 ? 'conditional ' : '';
  switch (i.kind) {
    case 'search-type':
      return `search of ${type}`;
    case 'history-type':
      return `history of ${type}`;
    case 'search-system':
    case 'history-system':
      return i.kind;
    case 'operation':
      return i.level === 'system' ? `operation ${i.operation ?? '$'}` : `operation ${i.operation ?? '$'} on ${type}`;
    case 'create':
    case 'update':
    case 'patch':
    case 'delete':
      return `${cond}${i.kind} of ${type}`;
    default:
      return `${i.kind} of ${type}`;
  }
}

/** Every permission the interaction needs, on its own type first. */
export function needsOf(i: Interaction): Need[] {
  if (i.kind === 'batch' || i.kind === 'transaction') {
    return (i.entries ?? []).flatMap((entry, k) => needsOf(entry).map((n) => ({ ...n, via: `Bundle.entry[${k}]: ${n.via ?? primaryVia(entry)}`, primary: false })));
  }
  const out: Need[] = [];
  const perms = primaryPerms(i);
  if (perms !== 0) {
    const systemLevel = i.kind === 'search-system' || i.kind === 'history-system' || (i.kind === 'operation' && i.level === 'system');
    out.push({ type: systemLevel ? ANY : (i.resourceType ?? ANY), perms, primary: true });
  }
  // A compartment search names the compartment's owner as its resourceType's parent: the
  // member type (or `*`) is what it returns, decided below with every other reach.
  if (searches(i)) {
    for (const r of searchReach(i)) {
      const types = r.types === ANY_TYPE ? [ANY] : r.types;
      for (const type of new Set(types)) out.push({ type, perms: PERM.s, via: r.via, primary: false });
    }
  }
  if (i.kind === 'operation' && i.operation === '$everything') {
    // Everything in the owner's compartment comes back.
    out.push({ type: ANY, perms: PERM.s, via: `operation $everything on ${i.resourceType ?? '[base]'}`, primary: false });
  }
  return out;
}
