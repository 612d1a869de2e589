// A request restricted to the launch patient's compartment (a patient/ scope granted what it
// needs), decided before it is sent wherever the request allows it:
// - a search of a compartment type is narrowed to the patient (a parameter naming the patient
//   is added, ANDed with the client's own), a search of Patient to `_id`;
// - a compartment search must name the patient itself;
// - chains and `_has` may not filter on a compartment type through another resource (they
//   would tell the client facts about other patients' records), and no search spans types;
// - `$everything` only for the patient itself;
// - a create must put its resource inside the compartment, and an update, patch or delete
//   must find the current version inside it and (update, patch) leave it there: the current
//   version is read first, and the write is sent with If-Match on that version, so nothing
//   can move the resource between the check and the write (patient-writes.ts);
// - what cannot be decided before sending (a read by id, an `_include`) is checked on the
//   response (patient-response.ts); what can be decided neither way is refused.
// Refusals that depend on an id answer exactly as "not found" does (patientNotFound), so a
// client cannot tell another patient's resource from one that does not exist.

import type { Interaction } from '../fhir/interaction';
import { refuse, type FhirError } from '../fhir/outcome';
import { describeInteraction } from '../policy/describe';
import { ANY_TYPE } from '../policy/reference-graph';
import { searchReach } from '../policy/search-reach';
import { inPatientCompartment, narrowingParam, patientCompartmentType } from './patient-compartment';

/** Kinds whose response is checked against the compartment (patient-response.ts). */
export const RESPONSE_CHECKED: ReadonlySet<string> = new Set(['read', 'vread', 'history-instance', 'search-type', 'operation']);

/** The one answer for a resource the patient may not see and for one that does not exist. */
export function patientNotFound(): FhirError {
  return refuse(404, 'not-found', 'not-found', 'no such resource');
}

function outside(why: string): FhirError {
  return refuse(403, 'patient-scope', 'forbidden', `a patient-scoped token ${why}`);
}

/**
 * Checks `i` against the compartment of Patient/`patient` before it is sent; returns the
 * parameters that narrow a search to it. Throws 403 (or the uniform 404) for what may not go.
 */
export function restrictToPatient(i: Interaction, patient: string): Array<[string, string]> {
  const type = i.resourceType;
  switch (i.kind) {
    case 'read':
    case 'vread':
    case 'history-instance':
      // Another patient's record is "not found" before anything is sent; the rest is checked on the response.
      if (type === 'Patient' && i.id !== patient) throw patientNotFound();
      return [];
    case 'search-type': {
      if (i.compartment) {
        if (i.compartment.resourceType !== 'Patient' || i.compartment.id !== patient) throw outside("searches only its own patient's compartment");
      }
      for (const p of i.params) {
        if (p.chain === undefined && p.name !== '_has' && !p.name.includes('.')) continue;
        for (const r of searchReach({ ...i, params: [p] })) {
          if (r.types === ANY_TYPE || r.types.some(patientCompartmentType)) {
            throw outside(`cannot filter through records that may be other patients' (${r.via}): chains and _has that reach a Patient compartment type are refused`);
          }
        }
      }
      if (type === undefined || type === '*' || !patientCompartmentType(type)) return [];
      const param = narrowingParam(type);
      if (param === undefined) throw outside(`cannot search ${type}: no parameter narrows it to the patient`);
      return [[param, param === '_id' ? patient : `Patient/${patient}`]];
    }
    case 'operation':
      if (i.operation === '$everything' && type === 'Patient') {
        if (i.level !== 'instance' || i.id !== patient) throw i.level === 'instance' ? patientNotFound() : outside('runs $everything only for its own patient');
        return [];
      }
      if (type !== undefined && !patientCompartmentType(type) && i.level !== 'system') return [];
      throw outside(`cannot run ${describeInteraction(i)}: only $everything on its own patient, and operations on types outside the Patient compartment`);
    case 'create':
      if (i.conditional) throw outside('cannot make a conditional create (its search would span other patients)');
      if (type === 'Patient') throw outside('cannot create a Patient');
      return [];
    case 'update':
    case 'patch':
    case 'delete':
      // The current version is read and checked before the write goes (patient-writes.ts).
      if (i.conditional) throw outside(`cannot make a conditional ${i.kind} (its search would span other patients)`);
      if (type === undefined || !patientCompartmentType(type)) throw outside(`cannot ${i.kind} ${type ?? 'this'}: only resources in its patient's compartment`);
      if (type === 'Patient' && i.id !== patient) throw patientNotFound();
      return [];
    default:
      throw outside(`cannot make a ${describeInteraction(i)} yet: it is refused rather than checked after the fact`);
  }
}

/** Kinds whose current version is read and checked before they are sent (patient-writes.ts). */
export const CURRENT_VERSION_CHECKED: ReadonlySet<string> = new Set(['update', 'patch', 'delete']);

/** A created or updated resource must belong to the patient's compartment (when its type has one). */
export function checkPatientBody(i: Interaction, body: unknown, patient: string): void {
  if ((i.kind !== 'create' && i.kind !== 'update') || !body || typeof body !== 'object') return;
  checkStaysInside(body as Record<string, unknown>, patient, i.kind === 'create' ? 'create' : 'write');
}

/** Throws 403 unless `resource` belongs to the patient's compartment (or its type has none). */
export function checkStaysInside(resource: Record<string, unknown>, patient: string, verb: 'create' | 'write'): void {
  if (typeof resource.resourceType === 'string' && patientCompartmentType(resource.resourceType) && !inPatientCompartment(resource, patient)) {
    // The patient is not named: refusals are logged, and logs carry no patient ids.
    throw outside(`can ${verb} only resources in its patient's compartment: this ${String(resource.resourceType)} would not refer to the launch patient`);
  }
}
