// The AuditEvent of each kind of request, as BALP shapes it, and fhirguard's own validator
// over every one made here, generated hostile records included: not one issue, not even a
// warning.

import fc from 'fast-check';
import { auditEvent, type AuditEvent } from '../../src/audit/audit-event';
import { AUDIT_OUTCOMES, auditWho, launchPatient, type AuditRecord } from '../../src/audit/record';
import type { Identity } from '../../src/auth/identity';
import { INTERACTION_KINDS, type InteractionKind } from '../../src/fhir/interaction';
import { FhirValidator } from '../../src/fhir/validate/validator';
import { readRecord } from './records';

const validator = new FhirValidator();

function expectValid(e: AuditEvent): void {
  expect({ id: e.id, issues: validator.validateResource(JSON.parse(JSON.stringify(e))) }).toEqual({ id: e.id, issues: [] });
}

function agent(e: AuditEvent, code: string) {
  return e.agent.find((a) => a.type.coding.some((c) => c.code === code));
}

function roles(e: AuditEvent): string[] {
  return (e.entity ?? []).map((x) => `${x.role?.code ?? '-'}:${x.what?.reference ?? x.what?.identifier?.value ?? ''}`);
}

/** BALP's action per interaction: what each does to data, searches executed. */
const ACTIONS: Record<string, string> = Object.fromEntries(
  'read:R vread:R history-instance:R history-type:R history-system:R capabilities:R search-type:E search-system:E create:C update:U patch:U delete:D operation:E batch:E transaction:E'
    .split(' ')
    .map((pair) => pair.split(':')),
);

const METHODS: Record<InteractionKind, string> = {
  read: 'GET',
  vread: 'GET',
  'history-instance': 'GET',
  'history-type': 'GET',
  'history-system': 'GET',
  capabilities: 'GET',
  'search-type': 'GET',
  'search-system': 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
  operation: 'POST',
  batch: 'POST',
  transaction: 'POST',
};

test('a read: BALP RESTful read with client, user, server, patient, resource and request id', () => {
  const e = auditEvent(readRecord(), { observer: 'fhirguard-east', site: 'St Elsewhere', serverAddress: '10.0.0.5' });
  expectValid(e);
  expect(e).toMatchObject({
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
    subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }],
    action: 'R',
    recorded: '2026-12-05T10:00:00.000Z',
    outcome: '0',
    source: { site: 'St Elsewhere', observer: { display: 'fhirguard-east' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4' }] },
  });
  expect(e.outcomeDesc).toBeUndefined();
  expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(agent(e, '110153')).toEqual({
    type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
    who: { identifier: { system: 'https://idp.hospital.example/realms/fhir', value: 'growth-chart' } },
    requestor: false,
    role: [{ text: 'launch/patient patient/Observation.rs' }],
    network: { address: '10.1.2.3', type: '2' },
  });
  expect(agent(e, 'IRCP')).toMatchObject({ who: { reference: 'Practitioner/7', identifier: { system: 'https://idp.hospital.example/realms/fhir', value: 'user-7' } }, requestor: true });
  expect(agent(e, '110152')).toMatchObject({ who: { display: 'fhirguard-east' }, requestor: false, network: { address: '10.0.0.5', type: '2' } });
  expect(roles(e)).toEqual(['1:Patient/123', '4:Observation/9', '-:req-1']);
  expect(e.entity?.[0].type).toEqual({ system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' });
  expect(e.entity?.[2].type).toMatchObject({ system: 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType', code: 'XrequestId' });
});

test.each(INTERACTION_KINDS.map((k) => [k]))('%s: its subtype and action, and a valid event', (kind) => {
  const record = readRecord({
    method: METHODS[kind],
    interaction: { kind, resourceType: 'Observation', ...(['read', 'vread', 'update', 'patch', 'delete', 'history-instance'].includes(kind) ? { id: '9' } : {}) },
    ...(kind === 'vread' ? { interaction: { kind, resourceType: 'Observation', id: '9', versionId: '3' } } : {}),
    ...(kind === 'search-type' ? { path: 'Observation', query: 'patient=123&code=http://loinc.org|8867-4' } : {}),
    ...(kind === 'operation' ? { path: 'Patient/123/$everything', interaction: { kind, resourceType: 'Patient', id: '123', operation: '$everything' } } : {}),
    status: kind === 'create' ? 201 : 200,
  });
  const e = auditEvent(record);
  expectValid(e);
  expect({ subtype: e.subtype?.[0].code, action: e.action }).toEqual({ subtype: kind, action: ACTIONS[kind] });
});

test('a search: the query in base64, byte for byte, as BALP Query keeps it, and the patient searched', () => {
  const query = 'patient=Patient%2F123&code=http://loinc.org|8867-4&_count=10';
  const e = auditEvent(readRecord({ path: 'Observation', query, interaction: { kind: 'search-type', resourceType: 'Observation' }, entities: undefined }));
  expectValid(e);
  const q = e.entity?.find((x) => x.role?.code === '24');
  expect(q).toEqual({
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
    role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '24', display: 'Query' },
    description: 'GET Observation',
    query: Buffer.from(query).toString('base64'),
  });
  expect(roles(e)).toEqual(['1:Patient/123', '24:', '-:req-1']);
});

test('a vread names the version; entities the proxy knows replace the URL target', () => {
  const vread = auditEvent(readRecord({ interaction: { kind: 'vread', resourceType: 'Observation', id: '9', versionId: '2' } }));
  expect(roles(vread)).toContain('4:Observation/9/_history/2');
  const search = auditEvent(readRecord({ interaction: { kind: 'search-type', resourceType: 'Observation' }, entities: ['Observation/1', 'Observation/2', 'Observation/1'] }));
  expect(roles(search).filter((r) => r.startsWith('4:'))).toEqual(['4:Observation/1', '4:Observation/2']);
  expectValid(vread);
  expectValid(search);
});

test.each([
  [
    'refused by the policy',
    { status: 403, outcome: 'refused', refusal: { reason: 'policy', diagnostics: 'the policy denies read of Observation' } },
    '4',
    '403 policy: the policy denies read of Observation',
  ],
  ['refused: no token', { status: 401, outcome: 'refused', refusal: { reason: 'no-token', diagnostics: 'a bearer token is required' } }, '4', '401 no-token: a bearer token is required'],
  ['refused: the upstream is down', { status: 503, outcome: 'refused', refusal: { reason: 'unavailable', diagnostics: 'no healthy member' } }, '8', '503 unavailable: no healthy member'],
  ['not found upstream', { status: 404, outcome: 'client-error' }, '4', '404 client-error'],
  ['an upstream error', { status: 502, outcome: 'upstream-error' }, '8', '502 upstream-error'],
  ['a server error', { status: 500, outcome: 'server-error' }, '8', '500 server-error'],
  ['the client hung up', { status: 200, outcome: 'client-closed' }, '4', '200 client-closed'],
] as [string, Partial<AuditRecord>, string, string][])('%s', (_name, over, outcome, desc) => {
  const e = auditEvent(readRecord(over));
  expectValid(e);
  expect({ outcome: e.outcome, outcomeDesc: e.outcomeDesc }).toEqual({ outcome, outcomeDesc: desc });
});

test('a request refused before it was understood: no subtype, action E, the method and path kept', () => {
  const e = auditEvent(
    readRecord({
      method: 'GET',
      path: 'Patient/../../etc/passwd',
      query: '',
      interaction: undefined,
      status: 400,
      outcome: 'refused',
      refusal: { reason: 'bad-path', diagnostics: 'a path that names no FHIR interaction' },
      who: {},
      patients: [],
    }),
  );
  expectValid(e);
  expect(e.subtype).toBeUndefined();
  expect(e.action).toBe('E');
  expect(e.entity?.find((x) => x.role?.code === '24')?.description).toBe('GET Patient/../../etc/passwd');
  expect(agent(e, '110153')).toMatchObject({ who: { display: 'unidentified client' }, requestor: true });
  expect(agent(e, 'IRCP')).toBeUndefined();
});

test('client credentials: no user agent, the client is the requestor; a certificate identifies a client without an id', () => {
  const system = auditEvent(readRecord({ who: { issuer: 'https://idp.example', clientId: 'batch-job', subject: 'batch-job' } }));
  expect(agent(system, 'IRCP')).toBeUndefined();
  expect(agent(system, '110153')?.requestor).toBe(true);
  const mtls = auditEvent(readRecord({ who: { certificate: 'sha256:ab:cd' } }));
  expect(agent(mtls, '110153')?.who).toEqual({ identifier: { type: { text: 'client certificate' }, value: 'sha256:ab:cd' } });
  const both = auditEvent(readRecord({ who: { clientId: 'app', certificate: 'sha256:ab:cd' } }));
  expect(agent(both, '110153')?.altId).toBe('sha256:ab:cd');
  for (const e of [system, mtls, both]) expectValid(e);
});

test('who and the launch patient from a verified token', () => {
  const identity = {
    issuer: 'https://idp.example',
    clientId: 'app',
    subject: 'u1',
    fhirUser: 'Practitioner/7',
    patient: '123',
    scopes: ['patient/*.rs'],
  } as unknown as Identity;
  expect(auditWho(identity)).toEqual({ issuer: 'https://idp.example', clientId: 'app', subject: 'u1', fhirUser: 'Practitioner/7', scopes: ['patient/*.rs'] });
  expect(launchPatient(identity)).toEqual(['Patient/123']);
  expect(auditWho(undefined)).toEqual({});
  expect(launchPatient(undefined)).toEqual([]);
});

test('every id is new', () => {
  const ids = new Set(Array.from({ length: 100 }, () => auditEvent(readRecord()).id));
  expect(ids.size).toBe(100);
});

const text = fc.string({ unit: 'binary', maxLength: 40 });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const records: fc.Arbitrary<AuditRecord> = fc.record({
  time: fc.oneof(fc.date({ min: new Date('1990-01-01'), max: new Date('2100-01-01') }), fc.constant(new Date(NaN))),
  requestId: text,
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'), text),
  path: text,
  query: text,
  interaction: maybe(
    fc.record(
      { kind: fc.constantFrom(...INTERACTION_KINDS), resourceType: maybe(fc.oneof(fc.constant('Observation'), text)), id: maybe(text), versionId: maybe(text), operation: maybe(text) },
      { requiredKeys: ['kind'] },
    ),
  ),
  status: fc.integer({ min: 100, max: 599 }),
  outcome: fc.constantFrom(...AUDIT_OUTCOMES),
  refusal: maybe(fc.record({ reason: text, diagnostics: text })),
  who: fc.record(
    {
      clientId: text,
      subject: text,
      fhirUser: fc.oneof(fc.constant('Practitioner/7'), text),
      issuer: fc.oneof(fc.constant('https://idp.example'), text),
      scopes: fc.array(text, { maxLength: 3 }),
      certificate: text,
    },
    { requiredKeys: [] },
  ),
  from: fc.record({ ip: fc.oneof(fc.constant('::1'), text) }),
  patients: fc.array(fc.oneof(fc.constant('Patient/123'), text), { maxLength: 3 }),
  entities: maybe(fc.array(fc.oneof(fc.constant('Observation/9'), text), { maxLength: 3 })),
  tier: maybe(text),
});

test('whatever a client sends, the event is a valid R4 AuditEvent', () => {
  fc.assert(
    fc.property(records, (r) => {
      expectValid(auditEvent(r));
    }),
    { numRuns: 300 },
  );
});
