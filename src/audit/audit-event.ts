// One AuditRecord as one FHIR R4 AuditEvent, shaped after IHE Basic Audit Log Patterns (BALP,
// https://profiles.ihe.net/ITI/BALP/): a RESTful event whose subtype is the FHIR interaction;
// the client application (DICOM "Source Role ID"), fhirguard (the "Destination Role ID") and,
// when the token names one, the user (information recipient, the requestor); every patient
// the request concerned (role Patient), the resources it read or wrote (role Domain
// Resource), the query (base64, as BALP's Query pattern keeps it, byte for byte) and the
// X-Request-Id. A refused request is audited too, with a failure outcome and the refusal's
// diagnostics.
//
// Every string from the request is cleaned to what a FHIR string may hold, and a reference
// that is not one is written as a display, so that whatever a client sends, the event is a
// valid R4 AuditEvent (test/audit/audit-event.test.ts runs fhirguard's validator over them).

import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { InteractionKind } from '../fhir/interaction';
import type { AuditRecord } from './record';

export interface Coding {
  system?: string;
  code: string;
  display?: string;
}

export interface Reference {
  reference?: string;
  identifier?: { system?: string; value: string; type?: { text: string } };
  display?: string;
}

export interface AuditEventAgent {
  type: { coding: Coding[] };
  who?: Reference;
  altId?: string;
  requestor: boolean;
  role?: { text: string }[];
  policy?: string[];
  network?: { address: string; type: '1' | '2' };
}

export interface AuditEventEntity {
  what?: Reference;
  type: Coding;
  role?: Coding;
  description?: string;
  query?: string;
}

export interface AuditEvent {
  resourceType: 'AuditEvent';
  id: string;
  type: Coding;
  subtype?: Coding[];
  action: 'C' | 'R' | 'U' | 'D' | 'E';
  recorded: string;
  outcome: '0' | '4' | '8';
  outcomeDesc?: string;
  agent: AuditEventAgent[];
  source: { site?: string; observer: Reference; type: Coding[] };
  entity?: AuditEventEntity[];
}

export interface AuditEventOptions {
  /** Names fhirguard as the observer and the destination agent (default `fhirguard`). */
  observer?: string;
  /** The site (a hospital, a data centre) this fhirguard serves. */
  site?: string;
  /** fhirguard's own address as clients reach it (host name or IP), for the destination agent. */
  serverAddress?: string;
}

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
/** BALP's entity type for the X-Request-Id of the request audited. */
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';

const REST: Coding = { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' };
const CLIENT_TYPE: Coding = { system: DCM, code: '110153', display: 'Source Role ID' };
const SERVER_TYPE: Coding = { system: DCM, code: '110152', display: 'Destination Role ID' };
const USER_TYPE: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' };
const APPLICATION_SERVER: Coding = { system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' };
const PERSON: Coding = { system: ENTITY_TYPE, code: '1', display: 'Person' };
const SYSTEM_OBJECT: Coding = { system: ENTITY_TYPE, code: '2', display: 'System Object' };
const PATIENT_ROLE: Coding = { system: OBJECT_ROLE, code: '1', display: 'Patient' };
const RESOURCE_ROLE: Coding = { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' };
const QUERY_ROLE: Coding = { system: OBJECT_ROLE, code: '24', display: 'Query' };
const REQUEST_ID: Coding = { system: BALP_ENTITY_TYPE, code: 'XrequestId' };

/** BALP's action per interaction: searches are executed (its Query pattern), the rest say what they do to data. */
const ACTION: Record<InteractionKind, AuditEvent['action']> = {
  read: 'R',
  vread: 'R',
  'history-instance': 'R',
  'history-type': 'R',
  'history-system': 'R',
  capabilities: 'R',
  'search-type': 'E',
  'search-system': 'E',
  create: 'C',
  update: 'U',
  patch: 'U',
  delete: 'D',
  operation: 'E',
  batch: 'E',
  transaction: 'E',
};

const SEARCHES: ReadonlySet<InteractionKind> = new Set(['search-type', 'search-system']);

/** How long a free-text element may grow: a hostile path or diagnostic must not bloat the trail. */
const MAX_TEXT = 2048;
const REFERENCE = /^[A-Z][A-Za-z]{1,63}\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Control characters FHIR strings may not hold, and white space other than what they may. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
const OTHER_SPACE = /[^\S \t\r\n]/g;

/** `s` as a FHIR string: no control characters or lone surrogates, trimmed, bounded; undefined when nothing is left. */
export function fhirString(s: string | undefined, max = MAX_TEXT): string | undefined {
  if (s === undefined) return undefined;
  const clean = s.slice(0, max).replace(LONE_SURROGATE, '\uFFFD').replace(CONTROL, '\uFFFD').replace(OTHER_SPACE, ' ').trim();
  return clean === '' ? undefined : clean;
}

/** A FHIR uri has no white space at all. */
function fhirUri(s: string | undefined): string | undefined {
  const clean = fhirString(s);
  return clean && !/\s/.test(clean) ? clean : undefined;
}

/** A reference to `ref` when it is one, else the text as the display. */
function referenceTo(ref: string): Reference | undefined {
  if (REFERENCE.test(ref)) return { reference: ref };
  const display = fhirString(ref);
  return display ? { display } : undefined;
}

function unique(refs: readonly string[]): string[] {
  return [...new Set(refs)];
}

function outcomeOf(r: AuditRecord): AuditEvent['outcome'] {
  if (r.status >= 500 || r.outcome === 'server-error' || r.outcome === 'upstream-error') return '8';
  return r.outcome === 'success' && r.status < 400 ? '0' : '4';
}

function outcomeDesc(r: AuditRecord): string | undefined {
  if (r.refusal) return fhirString(`${r.status} ${r.refusal.reason}: ${r.refusal.diagnostics}`);
  return r.outcome === 'success' && r.status < 400 ? undefined : `${r.status} ${r.outcome}`;
}

function clientAgent(r: AuditRecord, requestor: boolean): AuditEventAgent {
  const { who } = r;
  const system = fhirUri(who.issuer);
  const clientId = fhirString(who.clientId);
  const certificate = fhirString(who.certificate);
  let id: Reference;
  if (clientId) id = { identifier: { ...(system ? { system } : {}), value: clientId } };
  else if (certificate) {
    const subject = fhirString(who.certificateSubject);
    id = { identifier: { type: { text: 'client certificate' }, value: certificate }, ...(subject ? { display: subject } : {}) };
  } else id = { display: 'unidentified client' };
  const scopes = fhirString(who.scopes?.join(' '), 8 * MAX_TEXT);
  const address = fhirString(r.from.ip, 64);
  return {
    type: { coding: [CLIENT_TYPE] },
    who: id,
    ...(clientId && certificate ? { altId: certificate } : {}),
    requestor,
    // The scopes the token granted the application: the grants its access was decided on.
    ...(scopes ? { role: [{ text: scopes }] } : {}),
    // The front door's policy that decided the request, by content (AuditEvent.agent.policy:
    // the policy that authorized the activity).
    ...(r.policy && /^sha256:[0-9a-f]{64}$/.test(r.policy) ? { policy: [`urn:fhirguard:policy:${r.policy}`] } : {}),
    ...(address ? { network: { address, type: '2' as const } } : {}),
  };
}

/** The user, when the token names one other than the client itself (client credentials). */
function userAgent(r: AuditRecord): AuditEventAgent | undefined {
  const { who } = r;
  const subject = fhirString(who.subject);
  const fhirUser = fhirString(who.fhirUser);
  if (!fhirUser && (!subject || subject === fhirString(who.clientId))) return undefined;
  const system = fhirUri(who.issuer);
  const user: Reference = {
    ...(fhirUser ? referenceTo(fhirUser) : {}),
    ...(subject ? { identifier: { ...(system ? { system } : {}), value: subject } } : {}),
  };
  return { type: { coding: [USER_TYPE] }, who: user, requestor: true };
}

function serverAgent(o: AuditEventOptions): AuditEventAgent {
  const address = fhirString(o.serverAddress, 255);
  return {
    type: { coding: [SERVER_TYPE] },
    who: { display: fhirString(o.observer) ?? 'fhirguard' },
    requestor: false,
    ...(address ? { network: { address, type: isIP(address) ? ('2' as const) : ('1' as const) } } : {}),
  };
}

/** The resources the request read or wrote: as the proxy knows them, else the URL's target. */
function resourcesOf(r: AuditRecord): string[] {
  if (r.entities?.length) return unique(r.entities);
  const i = r.interaction;
  if (!i?.resourceType || !i.id) return [];
  return [`${i.resourceType}/${i.id}${i.versionId ? `/_history/${i.versionId}` : ''}`];
}

/**
 * The request itself: for a search (BALP's Query), for any request with a query string, and
 * for one refused before it was understood, so the audit says what was asked. The query goes
 * in base64 as sent; the description says the method and the path.
 */
function requestEntity(r: AuditRecord): AuditEventEntity | undefined {
  const kind = r.interaction?.kind;
  if (r.query === '' && kind !== undefined && !SEARCHES.has(kind)) return undefined;
  const description = fhirString(`${r.method} ${r.path}`);
  return {
    type: SYSTEM_OBJECT,
    role: QUERY_ROLE,
    ...(description ? { description } : {}),
    ...(r.query !== '' ? { query: Buffer.from(r.query, 'utf8').toString('base64') } : {}),
  };
}

function validDate(d: Date): Date {
  return Number.isNaN(d.getTime()) ? new Date() : d;
}

/** The AuditEvent for one handled request. Its id is new each call (the trail's events are told apart by it). */
export function auditEvent(r: AuditRecord, o: AuditEventOptions = {}): AuditEvent {
  const kind = r.interaction?.kind;
  const user = userAgent(r);
  const entities: AuditEventEntity[] = [];
  for (const p of unique(r.patients)) {
    const what = referenceTo(p);
    if (what) entities.push({ what, type: PERSON, role: PATIENT_ROLE });
  }
  for (const e of resourcesOf(r)) {
    const what = referenceTo(e);
    if (what) entities.push({ what, type: SYSTEM_OBJECT, role: RESOURCE_ROLE });
  }
  const request = requestEntity(r);
  if (request) entities.push(request);
  const requestId = fhirString(r.requestId, 200);
  if (requestId) entities.push({ what: { identifier: { value: requestId } }, type: REQUEST_ID });
  const desc = outcomeDesc(r);
  const observer = fhirString(o.observer) ?? 'fhirguard';
  const site = fhirString(o.site);
  return {
    resourceType: 'AuditEvent',
    id: randomUUID(),
    type: REST,
    ...(kind ? { subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: kind, display: kind }] } : {}),
    action: kind ? ACTION[kind] : 'E',
    recorded: validDate(r.time).toISOString(),
    outcome: outcomeOf(r),
    ...(desc ? { outcomeDesc: desc } : {}),
    agent: [clientAgent(r, !user), ...(user ? [user] : []), serverAgent(o)],
    source: { ...(site ? { site } : {}), observer: { display: observer }, type: [APPLICATION_SERVER] },
    ...(entities.length ? { entity: entities } : {}),
  };
}
