// Which resource types point at which, from the R4 reference search parameters: what an
// `_include=Type:*` can add, what a `_revinclude=*` can add, and the members of a
// compartment. Built once, on first use (at policy load).

import { COMPARTMENT_OWNERS, compartmentTypes } from '../fhir/compartments';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import { searchParamsOf } from '../fhir/search-parameters';

/** A set of reached types too large or unknown to list: every R4 type. */
export const ANY_TYPE = 'any';
export type Types = readonly string[] | typeof ANY_TYPE;

interface Graph {
  /** Type → every type its reference parameters can point to (ANY_TYPE when one points to any). */
  forward: Map<string, Types>;
  /** Type → every type with a reference parameter that can point to it. */
  backward: Map<string, readonly string[]>;
  /** Compartment owner type → member types (the R4 CompartmentDefinitions). */
  compartments: Map<string, readonly string[]>;
  /** Type → itself and every type reachable by following references forward, transitively. */
  forwardClosure: Map<string, Types>;
  /** Type → itself and every type that can reach it by references, transitively. */
  backwardClosure: Map<string, Types>;
}

let graph: Graph | undefined;

function build(): Graph {
  const forward = new Map<string, Types>();
  const backward = new Map<string, Set<string>>(R4_RESOURCE_TYPES.map((t) => [t, new Set<string>()]));
  for (const type of R4_RESOURCE_TYPES) {
    const targets = new Set<string>();
    let any = false;
    for (const def of searchParamsOf(type).values()) {
      if (def.type !== 'reference') continue;
      if (def.targets.length === 0) any = true;
      for (const t of def.targets) {
        targets.add(t);
        backward.get(t)?.add(type);
      }
    }
    forward.set(type, any ? ANY_TYPE : [...targets]);
  }
  // A reference parameter that may point to any type makes its base a source of every type.
  for (const [type, targets] of forward) if (targets === ANY_TYPE) for (const set of backward.values()) set.add(type);

  const compartments = new Map<string, readonly string[]>(COMPARTMENT_OWNERS.map((owner) => [owner, compartmentTypes(owner)]));
  const backwardLists = new Map([...backward].map(([t, s]) => [t, [...s] as readonly string[]]));
  const step =
    <T>(m: Map<string, T>) =>
    (t: string) =>
      (m.get(t) ?? ANY_TYPE) as Types;
  return {
    forward,
    backward: backwardLists,
    compartments,
    forwardClosure: new Map(R4_RESOURCE_TYPES.map((t) => [t, closure([t], step(forward))])),
    backwardClosure: new Map(R4_RESOURCE_TYPES.map((t) => [t, closure([t], step(backwardLists))])),
  };
}

function g(): Graph {
  graph ??= build();
  return graph;
}

/** Every type the reference parameters of `type` can point to. */
export function referenceTargetsOf(type: string): Types {
  return g().forward.get(type) ?? ANY_TYPE;
}

/** Every type that has a reference parameter able to point to `type`. */
export function referenceSourcesOf(type: string): readonly string[] {
  return g().backward.get(type) ?? R4_RESOURCE_TYPES;
}

/** The member types of `owner`'s compartment (every type for a type that owns none: classify refuses those). */
export function compartmentMembers(owner: string): Types {
  return g().compartments.get(owner) ?? ANY_TYPE;
}

/** `type` and everything its references reach, transitively (precomputed). */
export function forwardClosureOf(type: string): Types {
  return g().forwardClosure.get(type) ?? ANY_TYPE;
}

/** `type` and every type whose references can reach it, transitively (precomputed). */
export function backwardClosureOf(type: string): Types {
  return g().backwardClosure.get(type) ?? ANY_TYPE;
}

/** Union of `step(t)` over `from`, repeated until nothing new is added; ANY_TYPE absorbs. */
export function closure(from: Types, step: (type: string) => Types): Types {
  if (from === ANY_TYPE) return ANY_TYPE;
  const seen = new Set(from);
  const queue = [...from];
  while (queue.length > 0) {
    const next = step(queue.pop() as string);
    if (next === ANY_TYPE) return ANY_TYPE;
    for (const t of next) {
      if (!seen.has(t)) {
        seen.add(t);
        queue.push(t);
      }
    }
  }
  return seen.size === R4_RESOURCE_TYPES.length ? ANY_TYPE : [...seen];
}

/** Union of several type sets; ANY_TYPE absorbs. */
export function union(sets: readonly Types[]): Types {
  if (sets.length === 1) return sets[0];
  const out = new Set<string>();
  for (const s of sets) {
    if (s === ANY_TYPE) return ANY_TYPE;
    for (const t of s) out.add(t);
  }
  return [...out];
}

/** Builds the tables now rather than on a first request. */
export function loadReferenceGraph(): void {
  g();
}
