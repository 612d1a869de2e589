// What the proxy hands the audit trail for every request it handles, allowed or refused: who
// asked, from where, for what, about which patients, and how it ended. Enough to answer "who
// read this patient's record" and nothing more: no bodies, no headers, no token. The trail
// turns each record into one FHIR AuditEvent (audit-event.ts).

import type { CertificateIdentity } from '../auth/client-certificate';
import type { Identity } from '../auth/identity';
import type { InteractionKind } from '../fhir/interaction';

/**
 * How the request ended. The proxy's own outcomes (the `outcome` label of
 * fhirguard_requests_total): 'client-closed' is a client that hung up before the response
 * ended, which may still have reached the upstream, so it is audited too.
 */
export const AUDIT_OUTCOMES = ['success', 'refused', 'client-error', 'server-error', 'upstream-error', 'client-closed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** The FHIR interaction, as classify named it; absent when the request was refused before that. */
export interface AuditedInteraction {
  kind: InteractionKind;
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** `$name` of an operation, with the `$`. */
  operation?: string;
}

/** Who asked, from the verified access token (all absent when authorization is off). */
export interface AuditWho {
  /** The OAuth client (`client_id` or `azp`). */
  clientId?: string;
  /** The token's subject (`sub`): the user, or the client itself for client credentials. */
  subject?: string;
  /** The user's FHIR resource (`fhirUser`), e.g. Practitioner/123. */
  fhirUser?: string;
  /** The token's issuer: the namespace of clientId and subject. */
  issuer?: string;
  /** The scopes the token granted. */
  scopes?: readonly string[];
  /** The client certificate (its fingerprint or subject) when the client authenticated with TLS. */
  certificate?: string;
  /** The client certificate's subject, as `CN=..., O=...`, beside its fingerprint in `certificate`. */
  certificateSubject?: string;
}

export interface AuditRecord {
  /** When the request arrived. */
  time: Date;
  /** The request's X-Request-Id, as the client saw it on the response. */
  requestId: string;
  method: string;
  /** The path below the FHIR base, e.g. `Patient/123/_history/2` (no leading slash). */
  path: string;
  /** The query string as forwarded (without the `?`); '' when there is none. */
  query: string;
  interaction?: AuditedInteraction;
  /** The HTTP status the client got. */
  status: number;
  outcome: AuditOutcome;
  /** Why fhirguard refused it: the OperationOutcome's reason and diagnostics. */
  refusal?: { reason: string; diagnostics: string };
  who: AuditWho;
  from: { ip: string };
  /**
   * References of the patients the request concerned, e.g. `Patient/123`: the launch patient,
   * a compartment's owner, the patient read or written, the patients of a search.
   */
  patients: readonly string[];
  /** References of the resources read or written, e.g. `Observation/9`, when known. */
  entities?: readonly string[];
  /** The policy tier the request went to. */
  tier?: string;
  /** The digest (`sha256:<hex>`) of the policy the request was decided under. */
  policy?: string;
}

/** `who` of a record from the verified token and client certificate; `{}` when the request had neither. */
export function auditWho(identity: Identity | undefined, certificate?: CertificateIdentity): AuditWho {
  const cert = certificate ? { certificate: certificate.fingerprint, certificateSubject: certificate.subject } : {};
  if (!identity) return cert;
  return {
    ...cert,
    issuer: identity.issuer,
    ...(identity.clientId !== undefined ? { clientId: identity.clientId } : {}),
    ...(identity.subject !== undefined ? { subject: identity.subject } : {}),
    ...(identity.fhirUser !== undefined ? { fhirUser: identity.fhirUser } : {}),
    scopes: identity.scopes,
  };
}

/** The launch patient of a token as a reference, for `patients`. */
export function launchPatient(identity: Identity | undefined): string[] {
  return identity?.patient ? [`Patient/${identity.patient}`] : [];
}
