// Whether a resource belongs to a patient's compartment (R4 CompartmentDefinition for Patient):
// it refers to that patient through one of its type's compartment parameters. Every Patient
// compartment parameter of R4 is a plain element path, some with `.where(resolve() is
// Patient)`, which the reference's own `Patient/` prefix answers; so each is compiled once, at
// first use, into the path to walk, and membership is a walk over the resource's JSON.

import { compartmentParams, compartmentTypes } from '../fhir/compartments';
import { searchParam } from '../fhir/search-parameters';

type Path = readonly string[];

const paths = new Map<string, readonly Path[]>();

/** The element paths of `type`'s Patient compartment parameters ('Observation.subject' → ['subject']). */
function pathsOf(type: string): readonly Path[] {
  let known = paths.get(type);
  if (known) return known;
  const out: Path[] = [];
  for (const param of compartmentParams('Patient', type) ?? []) {
    if (param === '{def}') continue;
    const expression = searchParam(type, param)?.expression ?? '';
    for (const part of expression.split('|')) {
      let text = part.trim();
      if (text.startsWith('(') && text.endsWith(')')) text = text.slice(1, -1);
      text = text.replace(/\.where\(resolve\(\) is Patient\)$/, '');
      if (!text.startsWith(`${type}.`)) continue;
      const steps = text.slice(type.length + 1).split('.');
      // Anything but plain element names (a function, a type cast) is not a path this walk
      // follows: such a parameter is left out, which can only make a resource a non-member.
      if (steps.every((s) => /^[A-Za-z][A-Za-z0-9]*$/.test(s))) out.push(steps);
    }
  }
  known = out;
  paths.set(type, known);
  return known;
}

/** Whether `reference` names Patient/`id` (relative, optionally with a version). */
function namesPatient(reference: unknown, id: string): boolean {
  if (typeof reference !== 'string' || !reference.startsWith('Patient/')) return false;
  const rest = reference.slice('Patient/'.length);
  return rest === id || rest.startsWith(`${id}/_history/`);
}

function refersTo(node: unknown, steps: Path, at: number, id: string): boolean {
  if (Array.isArray(node)) return node.some((n) => refersTo(n, steps, at, id));
  if (node === null || typeof node !== 'object') return false;
  if (at === steps.length) return namesPatient((node as { reference?: unknown }).reference, id);
  return refersTo((node as Record<string, unknown>)[steps[at]], steps, at + 1, id);
}

const MEMBERS: ReadonlySet<string> = new Set(compartmentTypes('Patient'));

/** Whether resources of `type` can belong to a Patient compartment (Patient itself included). */
export function patientCompartmentType(type: string): boolean {
  return type === 'Patient' || MEMBERS.has(type);
}

/** Whether `resource` belongs to the compartment of Patient/`id`. */
export function inPatientCompartment(resource: Record<string, unknown>, id: string): boolean {
  const type = resource.resourceType;
  if (typeof type !== 'string') return false;
  if (type === 'Patient' && resource.id === id) return true;
  return pathsOf(type).some((steps) => refersTo(resource, steps, 0, id));
}

/** The compartment parameter a search of `type` is narrowed by: the one naming the patient most directly. */
export function narrowingParam(type: string): string | undefined {
  if (type === 'Patient') return '_id';
  const params = (compartmentParams('Patient', type) ?? []).filter((p) => p !== '{def}');
  return ['patient', 'subject', 'beneficiary', 'individual'].find((p) => params.includes(p)) ?? params[0];
}
