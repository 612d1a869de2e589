// What resource types a search can return or filter on, beyond the type in its URL: the leak
// FHIR servers' own authorization keeps missing (`Encounter?_include=Encounter:practitioner`
// returns Practitioners; `Encounter?practitioner.name=x` filters on them). Every answer errs
// on the side of reaching more: whatever fhirguard cannot bound (an unknown parameter, a
// `_filter` expression) reaches every type, and then only a policy that lets every type be
// read allows it.

import type { Interaction, SearchParam } from '../fhir/interaction';
import { isResourceType, searchParam } from '../fhir/search-parameters';
import { ANY_TYPE, backwardClosureOf, closure, compartmentMembers, forwardClosureOf, referenceSourcesOf, referenceTargetsOf, type Types, union } from './reference-graph';

export interface Reach {
  /** What reaches, as the client wrote it; values are left out where they may hold patient data. */
  via: string;
  types: Types;
  /** With ANY_TYPE: why the reach could not be bounded. */
  why?: string | undefined;
}

interface Bounded {
  types: Types;
  why?: string;
  /** One more type reached (an include's source type), kept apart to avoid copying `types`. */
  also?: string;
}

/** Whether the interaction runs a search whose reach must be checked. */
export function searches(i: Interaction): boolean {
  return i.kind === 'search-type' || i.kind === 'search-system' || i.compartment !== undefined || (i.conditional && i.params.length > 0);
}

/** The parameter as written: name, `:modifier`, `.chain` (classify splits them; reach reads the whole). */
function rawKey(p: SearchParam): string {
  let key = p.name;
  if (p.modifier !== undefined) key += `:${p.modifier}`;
  if (p.chain !== undefined) key += `.${p.chain}`;
  return key;
}

/** The parameters that reach other types without a chain. */
const REACHING: ReadonlySet<string> = new Set(['_include', '_revinclude', '_has', '_type', '_list', '_filter', '_query']);

/** A parameter that can never reach another type: no chain, not one of REACHING. */
function inert(p: SearchParam): boolean {
  return p.chain === undefined && !REACHING.has(p.name) && !p.name.includes('.');
}

function concreteType(t: string | undefined): string | undefined {
  return t !== undefined && isResourceType(t) ? t : undefined;
}

function typeList(value: string): Bounded {
  const types = value.split(',').map((t) => t.trim());
  const unknown = types.find((t) => !isResourceType(t));
  return unknown === undefined ? { types } : { types: ANY_TYPE, why: `${JSON.stringify(unknown)} is not a resource type` };
}

/** The reference targets of `param` on every type of `from`; a type modifier narrows them. */
function follow(from: Types, param: string, typeModifier: string | undefined): Bounded {
  if (typeModifier !== undefined) {
    return isResourceType(typeModifier) ? { types: [typeModifier] } : { types: ANY_TYPE, why: `${JSON.stringify(typeModifier)} is not a resource type` };
  }
  if (from === ANY_TYPE) return { types: ANY_TYPE, why: `${param} is followed from every type` };
  const out: Types[] = [];
  for (const t of from) {
    const def = searchParam(t, param);
    if (def?.type !== 'reference') continue;
    if (def.targets.length === 0) return { types: ANY_TYPE, why: `${param} of ${t} can point to any type` };
    out.push(def.targets);
  }
  if (out.length === 0) return { types: ANY_TYPE, why: `${param} is not a reference parameter of ${from.join(', ')}` };
  return { types: union(out) };
}

/** `a.b:Type.c` from `from`: every type along the chain (the last element filters, reaching nothing more). */
function chain(from: Types, key: string): Bounded {
  const links = key.split('.');
  const reached: Types[] = [];
  let at: Types = from;
  for (const link of links.slice(0, -1)) {
    const colon = link.indexOf(':');
    const next = follow(at, colon < 0 ? link : link.slice(0, colon), colon < 0 ? undefined : link.slice(colon + 1));
    if (next.types === ANY_TYPE) return next;
    reached.push(next.types);
    at = next.types;
  }
  return { types: union(reached) };
}

/** `_has:Type:param:[_has:...:]field`: every Type along it, and a chain in the last field. */
function has(key: string): Bounded {
  const parts = key.split(':');
  const types: string[] = [];
  let i = 0;
  while (parts[i] === '_has') {
    const type = parts[i + 1];
    if (type === undefined || !isResourceType(type)) {
      return { types: ANY_TYPE, why: `${JSON.stringify(type ?? '')} is not a resource type` };
    }
    types.push(type);
    i += 3;
  }
  if (types.length === 0) return { types: ANY_TYPE, why: `${JSON.stringify(key)} is not _has:Type:param:field` };
  const last = parts.slice(i).join(':');
  if (!last.includes('.')) return { types };
  const more = chain([types[types.length - 1]], last);
  return more.types === ANY_TYPE ? more : { types: union([types, more.types]) };
}

/** One `_include` value: `Source:param[:Target]`, `Source:*`; `*` is handled by the caller. */
function include(piece: string): Bounded {
  const parts = piece.split(':');
  const source = parts[0];
  const param = parts[1];
  const target = parts[2];
  if (parts.length > 3 || !source || !param) return { types: ANY_TYPE, why: `${JSON.stringify(piece)} is not Type:param[:Target]` };
  if (!isResourceType(source)) return { types: ANY_TYPE, why: `${JSON.stringify(source)} is not a resource type` };
  if (target !== undefined) {
    return isResourceType(target) ? { types: [target], also: source } : { types: ANY_TYPE, why: `${JSON.stringify(target)} is not a resource type` };
  }
  if (param === '*') {
    const all = referenceTargetsOf(source);
    return all === ANY_TYPE ? { types: ANY_TYPE, why: `a reference of ${source} can point to any type` } : { types: all, also: source };
  }
  const def = searchParam(source, param);
  if (def?.type !== 'reference') return { types: ANY_TYPE, why: `${source} has no reference parameter ${param}` };
  if (def.targets.length === 0) return { types: ANY_TYPE, why: `${source}:${param} can point to any type` };
  // The definition's own array: no copy per request.
  return { types: def.targets, also: source };
}

/** One `_revinclude` value: the source type is what comes back. */
function revinclude(piece: string): Bounded {
  const source = piece.split(':')[0];
  return isResourceType(source) ? { types: [source] } : { types: ANY_TYPE, why: `${JSON.stringify(source)} is not a resource type` };
}

const NONE: readonly Reach[] = Object.freeze([]);

function allOf(types: Types, step: (t: string) => Types): Types {
  if (types === ANY_TYPE) return ANY_TYPE;
  return types.length === 1 ? step(types[0]) : union(types.map(step));
}

/** How the refusal names the search, e.g. `Encounter`, `[base]`, `Patient/[id]/*`. */
function prefixOf(i: Interaction, concrete: string | undefined): string {
  if (i.compartment) return `${i.compartment.resourceType}/[id]/${concrete ?? '*'}`;
  if (i.kind === 'search-system') return '[base]';
  if (i.kind !== 'search-type') return `conditional ${i.kind} ${i.resourceType ?? ''}`;
  return i.resourceType ?? '[base]';
}

/**
 * Every type the search reaches beyond what its own rule decided: compartment owners,
 * system-search types, conditional criteria, `_include`, `_revinclude` (with `*` and
 * `:iterate`), `_has`, chains, `_type`, `_list`, and unanalysed `_filter`/`_query`.
 */
export function searchReach(i: Interaction): readonly Reach[] {
  // The common case, a type search on plain parameters, reaches nothing beyond its type.
  if (i.kind === 'search-type' && i.compartment === undefined && i.params.every(inert)) return NONE;
  const reaches: Reach[] = [];
  const concrete = concreteType(i.resourceType);
  const prefix = prefixOf(i, concrete);
  let typeValues: string | undefined;
  for (const p of i.params) {
    if (p.name === '_type' && p.modifier === undefined) typeValues = typeValues === undefined ? p.value : `${typeValues},${p.value}`;
  }
  const typed = typeValues !== undefined ? typeList(typeValues) : undefined;
  const typeVia = (): string => `${prefix}?_type=${typeValues}`;

  // What the search returns before includes. `_type` is decided the same way at every level
  // (type, system, compartment type, compartment `*`): every type it names is reached, whether
  // or not it narrows what comes back.
  let sources: Types;
  if (i.compartment) reaches.push({ via: prefix, types: [i.compartment.resourceType] });
  if (typed) reaches.push({ via: typeVia(), types: typed.types, why: typed.why });
  if (concrete) {
    sources = [concrete];
    if (i.kind !== 'search-type') {
      reaches.push({ via: `${prefix}?${i.params.map((p) => p.name).join('&')}`, types: sources });
    }
  } else if (typed) {
    sources = typed.types;
  } else if (i.compartment) {
    const owner = i.compartment.resourceType;
    sources = compartmentMembers(owner);
    reaches.push({ via: prefix, types: sources, why: sources === ANY_TYPE ? `${owner} owns no R4 compartment` : undefined });
  } else {
    sources = ANY_TYPE;
    reaches.push({ via: 'a system search without _type', types: ANY_TYPE, why: 'no _type narrows it' });
  }

  const included: Types[] = [sources];
  let wild: { via: string; forward: boolean }[] | undefined;
  for (const p of i.params) {
    if (inert(p) || p.name === '_type') continue;
    const key = rawKey(p);
    const via = `${prefix}?${key}`;
    switch (p.name) {
      case '_include':
      case '_revinclude': {
        const forward = p.name === '_include';
        // `_include:iterate` (and R3's `:recurse`): any modifier counts as iterating.
        const iterate = p.modifier !== undefined;
        for (const piece of p.value.split(',')) {
          const v = `${via}=${piece}`;
          if (piece === '*') {
            if (iterate) (wild ??= []).push({ via: v, forward });
            const types = allOf(sources, forward ? referenceTargetsOf : referenceSourcesOf);
            included.push(types);
            reaches.push({ via: v, types, why: 'every reference of every type the search returns' });
            continue;
          }
          const b = forward ? include(piece) : revinclude(piece);
          included.push(b.types);
          reaches.push({ via: v, types: b.types, why: b.why });
          if (b.also !== undefined) {
            included.push([b.also]);
            reaches.push({ via: v, types: [b.also] });
          }
        }
        break;
      }
      case '_has': {
        const b = has(key);
        reaches.push({ via, types: b.types, why: b.why });
        break;
      }
      case '_list':
        reaches.push({ via: `${via}=${p.value}`, types: ['List'] });
        break;
      case '_filter':
      case '_query':
        reaches.push({ via, types: ANY_TYPE, why: `fhirguard does not analyse ${p.name}` });
        break;
      default:
        if (key.includes('.')) {
          const b = chain(sources, key);
          reaches.push({ via, types: b.types, why: b.why });
        }
    }
  }

  // `:iterate` with `*`: whatever the included types include in turn, to a fixed point
  // (precomputed per type when only one direction iterates).
  if (wild !== undefined) {
    const forward = wild.some((w) => w.forward);
    const backward = wild.some((w) => !w.forward);
    const from = union(included);
    const types = forward && backward ? closure(from, (t) => union([referenceTargetsOf(t), referenceSourcesOf(t)])) : allOf(from, forward ? forwardClosureOf : backwardClosureOf);
    reaches.push({ via: wild[0].via, types, why: 'iterating every reference from every type reached' });
  }
  return reaches;
}
