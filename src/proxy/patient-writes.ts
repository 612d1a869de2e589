// An update, patch or delete restricted to a patient's compartment: the current version is
// read from the member that will take the write, and must be the patient's (otherwise the
// write is answered as "not found", like one to a resource that does not exist); a patch is
// applied to it here, and the result must stay the patient's. The write then goes with
// If-Match on the version checked, so a resource changed between the check and the write
// fails (412) instead of being written unchecked. A resource that does not exist may be made
// by an update (its body was checked by the pipeline); a patch or delete of it is "not found".

import { applyPatch, type Operation } from 'rfc6902';
import { checkStaysInside, patientNotFound } from '../auth/patient-access';
import { inPatientCompartment } from '../auth/patient-compartment';
import type { Interaction } from '../fhir/interaction';
import { refuse, type FhirError } from '../fhir/outcome';
import { uncheckable } from './errors';
import type { Member } from './pool';

/** What the write may go with: the If-Match to send, or the answer instead of it. */
export type WriteCheck = { ifMatch?: string } | { refusal: FhirError } | { failure: Error };

function versionConflict(): FhirError {
  return refuse(412, 'version-conflict', 'conflict', 'If-Match does not name the current version');
}

/** Reads the current version of `i`'s resource from `member` and decides whether the write may go. */
export async function checkCurrentVersion(i: Interaction, member: Member, timeoutMs: number, patient: string, body: Buffer | undefined, clientIfMatch: string | undefined): Promise<WriteCheck> {
  let status: number;
  let text: string;
  try {
    const res = await member.client.request({
      path: `${member.upstream.basePath}/${i.resourceType}/${i.id}`,
      method: 'GET',
      headers: { host: member.upstream.host, accept: 'application/fhir+json', 'user-agent': 'fhirguard-patient-write' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    return { failure: err as Error };
  }
  if (status === 404 || status === 410) return i.kind === 'update' ? {} : { refusal: patientNotFound() };
  if (status !== 200) return { failure: uncheckable(`reading the current version answered ${status}`) };
  let current: Record<string, unknown>;
  try {
    current = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { failure: uncheckable('the current version is not JSON') };
  }
  if (!inPatientCompartment(current, patient)) return { refusal: patientNotFound() };
  if (i.kind === 'patch') {
    const operations = JSON.parse((body ?? Buffer.from('[]')).toString('utf8')) as unknown;
    if (!Array.isArray(operations))
      return { refusal: refuse(403, 'patient-scope', 'forbidden', 'a patient-scoped token patches with JSON Patch only: what a FHIRPath Patch does cannot be checked against the compartment') };
    const patched = structuredClone(current);
    const results = applyPatch(patched, operations as Operation[]);
    // A patch that does not apply is the server's to refuse; one that applies must leave the resource inside.
    if (results.every((r) => r === null)) {
      try {
        checkStaysInside(patched, patient, 'write');
      } catch (e) {
        return { refusal: e as FhirError };
      }
    }
  }
  const versionId = (current.meta as { versionId?: unknown } | undefined)?.versionId;
  if (typeof versionId !== 'string') return { failure: uncheckable('the current version has no meta.versionId to write against') };
  const ifMatch = `W/"${versionId}"`;
  if (clientIfMatch !== undefined && clientIfMatch.replace(/^W\//, '') !== `"${versionId}"`) return { refusal: versionConflict() };
  return { ifMatch };
}
