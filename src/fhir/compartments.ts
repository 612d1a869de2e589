// The R4 compartments (CompartmentDefinitions for Patient, Encounter, RelatedPerson,
// Practitioner and Device) as lookup tables built once: which types own a compartment, which
// types are members of each, and by which search parameters. A compartment search names an
// owner and a member type from the request path, so both are looked up in Maps only.

import { R4_COMPARTMENTS } from './r4-compartments';

const owners: ReadonlyMap<string, ReadonlyMap<string, readonly string[]>> = new Map(R4_COMPARTMENTS.map(([owner, members]) => [owner, new Map(members)]));

const memberLists: ReadonlyMap<string, readonly string[]> = new Map(R4_COMPARTMENTS.map(([owner, members]) => [owner, members.map(([t]) => t)]));

/** The types that own a compartment, in R4's order of definitions. */
export const COMPARTMENT_OWNERS: readonly string[] = R4_COMPARTMENTS.map(([owner]) => owner);

/** Whether `owner` has an R4 compartment (`owner/[id]/...` searches exist). */
export function isCompartmentOwner(owner: string): boolean {
  return owners.has(owner);
}

/** Whether `type` is a member of `owner`'s compartment. */
export function inCompartment(owner: string, type: string): boolean {
  return owners.get(owner)?.has(type) ?? false;
}

/** The member types of `owner`'s compartment ([] when it owns none). */
export function compartmentTypes(owner: string): readonly string[] {
  return memberLists.get(owner) ?? [];
}

/** The search parameters that link a `type` resource to `owner`'s compartment ('{def}': the owner itself). */
export function compartmentParams(owner: string, type: string): readonly string[] | undefined {
  return owners.get(owner)?.get(type);
}
