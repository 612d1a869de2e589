// The audit record of one request the front door handled, made when its response ends (or its
// client leaves): who asked (the verified token), from where, what (the interaction, the query
// as forwarded), how it ended, and which patients it concerned as far as the front door can
// tell without reading answers it would otherwise stream: the launch patient, a compartment's
// owner, a Patient read or written, Patient references in the search's parameters, and the
// patients a created or updated resource refers to.

import type { FastifyRequest } from 'fastify';
import { auditWho, type AuditOutcome, type AuditRecord } from '../audit/record';
import type { Interaction } from '../fhir/interaction';
import { connectionCertificate } from './client-certificates';
import type { RequestState } from './request-state';

/** Where finished requests' records go (the audit trail, or the agent that keeps it). */
export interface AuditDestination {
  record(r: AuditRecord): void;
}

const PATIENT_REF = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** Patient references of a resource: every `reference` naming a Patient, anywhere in it. */
function referencedPatients(node: unknown, out: Set<string>, depth = 0): void {
  if (depth > 32 || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) referencedPatients(n, out, depth + 1);
    return;
  }
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'reference' && typeof value === 'string') {
      const m = PATIENT_REF.exec(value);
      if (m) out.add(`Patient/${m[1]}`);
    } else if (typeof value === 'object') referencedPatients(value, out, depth + 1);
  }
}

/** The patients a request concerned, as far as its request says. */
export function patientsOf(i: Interaction | undefined, state: RequestState, body: unknown): string[] {
  const out = new Set<string>();
  if (state.identity?.patient) out.add(`Patient/${state.identity.patient}`);
  if (!i) return [...out];
  if (i.compartment?.resourceType === 'Patient') out.add(`Patient/${i.compartment.id}`);
  if (i.resourceType === 'Patient' && i.id !== undefined) out.add(`Patient/${i.id}`);
  for (const p of i.params) {
    for (const v of p.value.split(',')) {
      const m = PATIENT_REF.exec(v);
      if (m) out.add(`Patient/${m[1]}`);
      else if (i.resourceType === 'Patient' && p.name === '_id' && /^[A-Za-z0-9\-.]{1,64}$/.test(v)) out.add(`Patient/${v}`);
    }
  }
  if ((i.kind === 'create' || i.kind === 'update') && body && typeof body === 'object') referencedPatients(body, out);
  return [...out];
}

function outcomeOf(status: number, state: RequestState | null, closed: boolean): AuditOutcome {
  if (state?.refused) return 'refused';
  if (closed) return 'client-closed';
  if (state?.upstreamFailed) return 'upstream-error';
  if (status >= 500) return 'server-error';
  if (status >= 400) return 'client-error';
  return 'success';
}

/**
 * The record of a finished request: the status its client got, how long ago (ms) it began,
 * and `closed` when the client left before the response ended.
 */
export function auditRecordOf(request: FastifyRequest, status: number, elapsedMs: number, base: string, closed: boolean): AuditRecord {
  const state = request.fhirguard;
  const url = request.url;
  const q = url.indexOf('?');
  const rawPath = (q < 0 ? url : url.slice(0, q)).slice(base.length).replace(/^\/+/, '');
  const i = state?.interaction;
  return {
    time: new Date(Date.now() - elapsedMs),
    requestId: request.id,
    method: request.method,
    path: rawPath,
    query: state && !state.refused ? state.forwardQuery : q < 0 ? '' : url.slice(q + 1),
    ...(i
      ? {
          interaction: {
            kind: i.kind,
            ...(i.resourceType !== undefined ? { resourceType: i.resourceType } : {}),
            ...(i.id !== undefined ? { id: i.id } : {}),
            ...(i.versionId !== undefined ? { versionId: i.versionId } : {}),
            ...(i.operation !== undefined ? { operation: i.operation } : {}),
          },
        }
      : {}),
    status,
    outcome: outcomeOf(status, state, closed),
    ...(state?.refusal ? { refusal: state.refusal } : {}),
    who: auditWho(state?.identity, connectionCertificate(request.raw.socket)),
    from: { ip: request.ip },
    patients: state ? (state.auditPatients ?? patientsOf(i, state, undefined)) : [],
    ...(i?.resourceType && i.id ? { entities: [`${i.resourceType}/${i.id}`] } : {}),
    ...(state?.tier ? { tier: state.tier.name } : {}),
    ...(state?.generation ? { policy: state.generation.policy.digest } : {}),
  };
}
