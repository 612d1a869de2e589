// What a client restricted to its launch patient's compartment gets of an upstream's answer,
// where the request could not be decided before it was sent: a read by id is answered only if
// the resource is the patient's (otherwise, like a resource that does not exist, with the
// uniform "not found"); a search's results and what `_include`/`_revinclude` brought in are
// kept only if they are the patient's, or of a type outside the Patient compartment (which
// the token's scopes already had to grant); an instance history only if every version is.
// An upstream's own "not found" or "gone" is replaced by the same uniform answer, so that
// "exists elsewhere" and "does not exist" cannot be told apart.

import type { Interaction } from '../fhir/interaction';
import { inPatientCompartment, patientCompartmentType } from './patient-compartment';

export type Checked = { kind: 'pass' } | { kind: 'replace'; body: Buffer } | { kind: 'not-found' } | { kind: 'unreadable' };

const PASS: Checked = { kind: 'pass' };

type Json = Record<string, unknown>;

function visible(resource: unknown, patient: string): boolean {
  if (!resource || typeof resource !== 'object') return true;
  const type = (resource as Json).resourceType;
  if (typeof type !== 'string') return false;
  if (type === 'OperationOutcome' || !patientCompartmentType(type)) return true;
  return inPatientCompartment(resource as Json, patient);
}

/** Kinds that name one resource (or one patient's everything) by id. */
function byId(i: Interaction): boolean {
  return i.kind === 'read' || i.kind === 'vread' || i.kind === 'history-instance' || (i.kind === 'operation' && i.level === 'instance');
}

/** Checks the upstream's answer to `i`, restricted to Patient/`patient`. */
export function checkPatientResponse(i: Interaction, status: number, body: Buffer, patient: string): Checked {
  if (byId(i) && (status === 404 || status === 410)) return { kind: 'not-found' };
  if (status < 200 || status >= 300 || body.length === 0) return PASS;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return { kind: 'unreadable' };
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return { kind: 'unreadable' };
  const resource = json as Json;
  if (resource.resourceType !== 'Bundle' || i.kind === 'read' || i.kind === 'vread') {
    return visible(resource, patient) ? PASS : { kind: 'not-found' };
  }
  const entries = Array.isArray(resource.entry) ? (resource.entry as Json[]) : [];
  if (i.kind === 'history-instance') {
    // Every version must be the patient's; a history with no version to judge by is not shown.
    const versions = entries.filter((e) => e && e.resource !== undefined);
    return versions.length > 0 && versions.every((e) => visible(e.resource, patient)) ? PASS : { kind: 'not-found' };
  }
  const kept = entries.filter((e) => e && typeof e === 'object' && visible(e.resource, patient));
  if (kept.length === entries.length) return PASS;
  // A total counted over what the client may not see would tell it how much there is.
  const { total: _total, ...rest } = resource;
  return { kind: 'replace', body: Buffer.from(JSON.stringify({ ...rest, entry: kept })) };
}
