// The classification table: method + URL (+ headers, body, form) of every R4 RESTful
// interaction shape (http://hl7.org/fhir/R4/http.html), each with the full Interaction it
// must produce or the exact status and reason of its refusal.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { classify, MethodNotAllowedError, type RequestView } from '../../src/fhir/classify';
import type { Interaction, SearchParam } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { parseJsonBody } from '../../src/fhir/body';

interface Req {
  headers?: RequestView['headers'];
  body?: unknown;
  form?: string;
  base?: string;
}

type Expect = Interaction | { status: number; reason: string };

type Case = [method: string, url: string, expected: Expect, req?: Req];

function view(method: string, url: string, req: Req = {}): RequestView {
  const q = url.indexOf('?');
  return {
    method,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? '' : url.slice(q + 1),
    headers: req.headers ?? {},
    body: req.body,
    form: req.form,
    base: req.base,
  };
}

/** An expected interaction: every field given, defaults for the rest. */
function I(kind: Interaction['kind'], level: Interaction['level'], fields: Partial<Interaction> = {}): Interaction {
  return { kind, level, conditional: false, params: [], ...fields };
}

function P(name: string, value: string, modifier?: string, chain?: string): SearchParam {
  return { name, value, ...(modifier !== undefined ? { modifier } : {}), ...(chain !== undefined ? { chain } : {}) };
}

function no(status: number, reason: string): { status: number; reason: string } {
  return { status, reason };
}

const pt = { resourceType: 'Patient' };
const long64 = 'a'.repeat(64);
const long65 = 'a'.repeat(65);

function bundle(type: string, ...requests: Record<string, unknown>[]): unknown {
  return { resourceType: 'Bundle', type, entry: requests.map((request) => ({ request, resource: pt })) };
}

const CASES: Case[] = [
  // read
  ['GET', '/Patient/123', I('read', 'instance', { resourceType: 'Patient', id: '123' })],
  ['HEAD', '/Patient/123', I('read', 'instance', { resourceType: 'Patient', id: '123' })],
  ['get', '/Patient/123', I('read', 'instance', { resourceType: 'Patient', id: '123' })],
  ['GET', 'Patient/123', I('read', 'instance', { resourceType: 'Patient', id: '123' })],
  ['GET', '/Observation/a.b-C9', I('read', 'instance', { resourceType: 'Observation', id: 'a.b-C9' })],
  ['GET', `/Patient/${long64}`, I('read', 'instance', { resourceType: 'Patient', id: long64 })],
  ['GET', `/Patient/${long65}`, no(400, 'bad-id')],
  ['GET', '/Patient/12_3', no(400, 'bad-id')],
  ['GET', '/Patient/a%20b', no(400, 'bad-id')],
  ['GET', '/Patient/%C3%A9', no(400, 'bad-id')],
  ['GET', '/Patient/%31%32%33', I('read', 'instance', { resourceType: 'Patient', id: '123' })],
  ['GET', '/Patient/123?_format=json', I('read', 'instance', { resourceType: 'Patient', id: '123', params: [P('_format', 'json')] })],
  ['GET', '/Patient/123?_summary=true&_elements=name,gender', I('read', 'instance', { resourceType: 'Patient', id: '123', params: [P('_summary', 'true'), P('_elements', 'name,gender')] })],
  ['GET', '/Binary/xyz', I('read', 'instance', { resourceType: 'Binary', id: 'xyz' })],
  ['GET', '/Parameters/p1', I('read', 'instance', { resourceType: 'Parameters', id: 'p1' })],
  ['GET', '/Patient/metadata', I('read', 'instance', { resourceType: 'Patient', id: 'metadata' })],
  ['GET', '/StructureDefinition/us-core-patient', I('read', 'instance', { resourceType: 'StructureDefinition', id: 'us-core-patient' })],
  ['POST', '/Patient/123', no(405, 'method-not-allowed')],

  // vread
  ['GET', '/Patient/123/_history/2', I('vread', 'instance', { resourceType: 'Patient', id: '123', versionId: '2' })],
  ['HEAD', '/Patient/123/_history/2', I('vread', 'instance', { resourceType: 'Patient', id: '123', versionId: '2' })],
  ['GET', '/Patient/123/_history/v1.0', I('vread', 'instance', { resourceType: 'Patient', id: '123', versionId: 'v1.0' })],
  [
    'GET',
    '/Observation/o1/_history/3?_format=application/fhir%2Bjson',
    I('vread', 'instance', { resourceType: 'Observation', id: 'o1', versionId: '3', params: [P('_format', 'application/fhir+json')] }),
  ],
  ['GET', '/Patient/123/_history/bad_vid', no(400, 'bad-id')],
  ['GET', `/Patient/123/_history/${long65}`, no(400, 'bad-id')],
  ['GET', '/Patient/bad!/_history/1', no(400, 'bad-id')],
  ['PUT', '/Patient/123/_history/2', no(405, 'method-not-allowed')],
  ['DELETE', '/Patient/123/_history/2', no(405, 'method-not-allowed')],
  ['POST', '/Patient/123/_history/2', no(405, 'method-not-allowed')],

  // update
  ['PUT', '/Patient/123', I('update', 'instance', { resourceType: 'Patient', id: '123' })],
  ['put', '/Patient/123', I('update', 'instance', { resourceType: 'Patient', id: '123' })],
  ['PUT', '/Patient/123?_format=application/fhir%2Bjson', I('update', 'instance', { resourceType: 'Patient', id: '123', params: [P('_format', 'application/fhir+json')] })],
  ['PUT', '/Patient', no(400, 'missing-criteria')],
  ['PUT', '/Patient?_format=json', no(400, 'missing-criteria')],
  ['PUT', '/Patient?identifier=http://a|1', I('update', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'http://a|1')] })],
  ['PUT', '/Patient?identifier=x&_format=json', I('update', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x'), P('_format', 'json')] })],
  ['PUT', '/Patient?name=%zz', no(400, 'bad-query')],

  // patch
  ['PATCH', '/Patient/123', I('patch', 'instance', { resourceType: 'Patient', id: '123' })],
  ['PATCH', '/Patient?identifier=x', I('patch', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x')] })],
  ['PATCH', '/Patient', no(400, 'missing-criteria')],
  ['PATCH', '/Patient?_pretty=true', no(400, 'missing-criteria')],

  // delete
  ['DELETE', '/Patient/123', I('delete', 'instance', { resourceType: 'Patient', id: '123' })],
  ['DELETE', '/Patient?identifier=x', I('delete', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x')] })],
  ['DELETE', '/Patient?_id=1', I('delete', 'type', { resourceType: 'Patient', conditional: true, params: [P('_id', '1')] })],
  ['DELETE', '/Patient', no(400, 'missing-criteria')],
  ['DELETE', '/Patient?_count=10', no(400, 'missing-criteria')],
  ['DELETE', '/Patient?_include=Patient:organization', no(400, 'missing-criteria')],
  ['DELETE', '/Patient/%2e%2e', no(400, 'bad-path')],

  // create
  ['POST', '/Patient', I('create', 'type', { resourceType: 'Patient' })],
  ['POST', '/Patient?_format=json', I('create', 'type', { resourceType: 'Patient', params: [P('_format', 'json')] })],
  ['POST', '/Patient', I('create', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'http://x|1')] }), { headers: { 'if-none-exist': 'identifier=http://x|1' } }],
  ['POST', '/Patient', I('create', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x')] }), { headers: { 'if-none-exist': '?identifier=x' } }],
  [
    'POST',
    '/Observation',
    I('create', 'type', { resourceType: 'Observation', conditional: true, params: [P('subject', 'x', undefined, 'identifier'), P('code', '1234-5')] }),
    { headers: { 'if-none-exist': 'subject.identifier=x&code=1234-5' } },
  ],
  [
    'POST',
    '/Patient?_format=json',
    I('create', 'type', { resourceType: 'Patient', conditional: true, params: [P('_format', 'json'), P('identifier', 'x')] }),
    { headers: { 'if-none-exist': 'identifier=x' } },
  ],
  ['POST', '/Patient', no(400, 'missing-criteria'), { headers: { 'if-none-exist': '' } }],
  ['POST', '/Patient', no(400, 'missing-criteria'), { headers: { 'if-none-exist': '_format=json' } }],
  ['POST', '/Patient', no(400, 'bad-query'), { headers: { 'if-none-exist': 'identifier=%zz' } }],
  ['POST', '/Patient', no(400, 'bad-header'), { headers: { 'if-none-exist': ['a=1', 'b=2'] as unknown as string } }],
  ['POST', '/Bundle', I('create', 'type', { resourceType: 'Bundle' }), { body: bundle('transaction', { method: 'GET', url: 'Patient/1' }) }],
  ['POST', '/Bundle', I('create', 'type', { resourceType: 'Bundle' }), { body: { resourceType: 'Bundle', type: 'collection' } }],
  ['POST', '/Basic', I('create', 'type', { resourceType: 'Basic' })],

  // history
  ['GET', '/Patient/123/_history', I('history-instance', 'instance', { resourceType: 'Patient', id: '123' })],
  ['GET', '/Patient/123/_history?_count=10&_since=2020-01-01', I('history-instance', 'instance', { resourceType: 'Patient', id: '123', params: [P('_count', '10'), P('_since', '2020-01-01')] })],
  ['GET', '/Patient/_history', I('history-type', 'type', { resourceType: 'Patient' })],
  ['HEAD', '/Patient/_history', I('history-type', 'type', { resourceType: 'Patient' })],
  ['GET', '/Patient/_history?_at=2020', I('history-type', 'type', { resourceType: 'Patient', params: [P('_at', '2020')] })],
  ['GET', '/_history', I('history-system', 'system')],
  ['HEAD', '/_history', I('history-system', 'system')],
  ['GET', '/_history?_since=2021-01-01T00:00:00Z', I('history-system', 'system', { params: [P('_since', '2021-01-01T00:00:00Z')] })],
  ['POST', '/_history', no(405, 'method-not-allowed')],
  ['POST', '/Patient/_history', no(405, 'method-not-allowed')],
  ['DELETE', '/Patient/123/_history', no(405, 'method-not-allowed')],
  ['PUT', '/Patient/_history', no(405, 'method-not-allowed')],
  ['GET', '/Foo/_history', no(404, 'unknown-type')],

  // search-type
  ['GET', '/Patient', I('search-type', 'type', { resourceType: 'Patient' })],
  ['HEAD', '/Patient?name=x', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'x')] })],
  ['GET', '/Patient?name=smith', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'smith')] })],
  ['GET', '/Patient?name:exact=Smith', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'Smith', 'exact')] })],
  ['GET', '/Patient?birthdate=ge1970-01-01&birthdate=lt1980-01-01', I('search-type', 'type', { resourceType: 'Patient', params: [P('birthdate', 'ge1970-01-01'), P('birthdate', 'lt1980-01-01')] })],
  ['GET', '/Observation?subject:Patient.name=peter', I('search-type', 'type', { resourceType: 'Observation', params: [P('subject', 'peter', 'Patient', 'name')] })],
  ['GET', '/Observation?subject.name=peter', I('search-type', 'type', { resourceType: 'Observation', params: [P('subject', 'peter', undefined, 'name')] })],
  [
    'GET',
    '/DiagnosticReport?subject.general-practitioner.name=joe',
    I('search-type', 'type', { resourceType: 'DiagnosticReport', params: [P('subject', 'joe', undefined, 'general-practitioner.name')] }),
  ],
  ['GET', '/Patient?_has:Observation:patient:code=1234-5', I('search-type', 'type', { resourceType: 'Patient', params: [P('_has', '1234-5', 'Observation:patient:code')] })],
  ['GET', '/Encounter?_include=Encounter:practitioner', I('search-type', 'type', { resourceType: 'Encounter', params: [P('_include', 'Encounter:practitioner')] })],
  [
    'GET',
    '/Patient?_revinclude=Observation:subject&_revinclude:iterate=Provenance:target',
    I('search-type', 'type', {
      resourceType: 'Patient',
      params: [P('_revinclude', 'Observation:subject'), P('_revinclude', 'Provenance:target', 'iterate')],
    }),
  ],
  ['GET', '/MedicationRequest?_include=*', I('search-type', 'type', { resourceType: 'MedicationRequest', params: [P('_include', '*')] })],
  ['GET', '/Observation?value-quantity=5.4|http://unitsofmeasure.org|mg', I('search-type', 'type', { resourceType: 'Observation', params: [P('value-quantity', '5.4|http://unitsofmeasure.org|mg')] })],
  ['GET', '/Patient?name=Jos%C3%A9', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'José')] })],
  ['GET', '/Patient?name=a+b', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'a b')] })],
  ['GET', '/Observation?date=ge2020-01-01T00:00:00%2B01:00', I('search-type', 'type', { resourceType: 'Observation', params: [P('date', 'ge2020-01-01T00:00:00+01:00')] })],
  ['GET', '/Patient?identifier=', I('search-type', 'type', { resourceType: 'Patient', params: [P('identifier', '')] })],
  ['GET', '/Patient?name', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', '')] })],
  ['GET', '/Patient?a=1&&b=2&', I('search-type', 'type', { resourceType: 'Patient', params: [P('a', '1'), P('b', '2')] })],
  ['GET', '/Patient?gender:not=male', I('search-type', 'type', { resourceType: 'Patient', params: [P('gender', 'male', 'not')] })],
  ['GET', '/Patient?name=a%3Db', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'a=b')] })],
  ['GET', '/Patient?=x', no(400, 'bad-query')],
  ['GET', '/Patient?name=%zz', no(400, 'bad-query')],
  ['GET', '/Patient?name=%E9', no(400, 'bad-query')],
  ['GET', '/Patient?name=%C3', no(400, 'bad-query')],
  ['GET', '/Patient?name=%ED%A0%80', no(400, 'bad-query')],
  ['GET', '/Patient?name=%00', no(400, 'bad-query')],
  ['GET', '/Patient?name=%', no(400, 'bad-query')],
  ['GET', '/Patient?name=%0a', no(400, 'bad-query')],
  ['GET', '/Patient?:exact=x', no(400, 'bad-query')],
  ['GET', '/Patient?name:=x', no(400, 'bad-query')],
  ['GET', '/Patient?subject.=x', no(400, 'bad-query')],
  ['GET', '/Patient?na%zzme=x', no(400, 'bad-query')],
  ['POST', '/Patient/_search', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'smith')], formParams: 1 }), { form: 'name=smith' }],
  [
    'POST',
    '/Patient/_search?_count=10',
    I('search-type', 'type', { resourceType: 'Patient', params: [P('_count', '10'), P('name', 'smith'), P('birthdate', 'ge2000')], formParams: 2 }),
    { form: 'name=smith&birthdate=ge2000' },
  ],
  ['POST', '/Patient/_search', I('search-type', 'type', { resourceType: 'Patient' })],
  ['POST', '/Patient/_search', I('search-type', 'type', { resourceType: 'Patient', params: [P('name', 'a b')], formParams: 1 }), { form: 'name=a+b' }],
  ['POST', '/Patient/_search', no(400, 'bad-query'), { form: 'name=%zz' }],
  ['POST', '/Patient/_search', no(400, 'bad-query'), { form: '=smith' }],
  ['GET', '/Patient/_search', no(405, 'method-not-allowed')],
  ['PUT', '/Patient/_search', no(405, 'method-not-allowed')],
  ['GET', '/Foo?name=x', no(404, 'unknown-type')],
  ['POST', '/Foo/_search', no(404, 'unknown-type')],

  // search-system
  ['GET', '/', I('search-system', 'system')],
  ['GET', '', I('search-system', 'system')],
  ['HEAD', '/?_type=Patient', I('search-system', 'system', { params: [P('_type', 'Patient')] })],
  ['GET', '/?_type=Patient,Observation', I('search-system', 'system', { params: [P('_type', 'Patient,Observation')] })],
  ['GET', '?_lastUpdated=gt2020-01-01', I('search-system', 'system', { params: [P('_lastUpdated', 'gt2020-01-01')] })],
  ['POST', '/_search', I('search-system', 'system', { params: [P('_type', 'Patient')], formParams: 1 }), { form: '_type=Patient' }],
  ['POST', '/_search?_count=5', I('search-system', 'system', { params: [P('_count', '5')] })],
  ['GET', '/_search', no(405, 'method-not-allowed')],
  ['GET', '/?bad=%G0', no(400, 'bad-query')],

  // compartment searches
  ['GET', '/Patient/123/Observation', I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Patient', id: '123' } })],
  ['GET', '/Patient/123/Observation?code=1234-5', I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Patient', id: '123' }, params: [P('code', '1234-5')] })],
  ['GET', '/Patient/123/*', I('search-system', 'system', { compartment: { resourceType: 'Patient', id: '123' } })],
  ['GET', '/Patient/123/%2A', I('search-system', 'system', { compartment: { resourceType: 'Patient', id: '123' } })],
  ['GET', '/Patient/123/*?_lastUpdated=gt2020', I('search-system', 'system', { compartment: { resourceType: 'Patient', id: '123' }, params: [P('_lastUpdated', 'gt2020')] })],
  ['HEAD', '/Patient/123/*', I('search-system', 'system', { compartment: { resourceType: 'Patient', id: '123' } })],
  ['GET', '/Encounter/e1/Observation', I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Encounter', id: 'e1' } })],
  ['GET', '/RelatedPerson/r1/Observation', I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'RelatedPerson', id: 'r1' } })],
  ['GET', '/Practitioner/p1/Encounter', I('search-type', 'type', { resourceType: 'Encounter', compartment: { resourceType: 'Practitioner', id: 'p1' } })],
  ['GET', '/Device/d1/Observation', I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Device', id: 'd1' } })],
  [
    'POST',
    '/Patient/123/_search',
    I('search-system', 'system', { compartment: { resourceType: 'Patient', id: '123' }, params: [P('_type', 'Observation')], formParams: 1 }),
    { form: '_type=Observation' },
  ],
  [
    'POST',
    '/Patient/123/Observation/_search',
    I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Patient', id: '123' }, params: [P('code', 'x')], formParams: 1 }),
    { form: 'code=x' },
  ],
  ['GET', '/Patient/123/_search', no(405, 'method-not-allowed')],
  ['GET', '/Patient/123/Observation/_search', no(405, 'method-not-allowed')],
  ['GET', '/Observation/1/Patient', no(404, 'unknown-path')],
  ['GET', '/Organization/1/*', no(404, 'unknown-path')],
  ['POST', '/Observation/1/Patient/_search', no(404, 'unknown-path')],
  ['GET', '/Patient/123/Foo', no(404, 'unknown-type')],
  // a type outside the compartment's R4 CompartmentDefinition names no interaction
  ['GET', '/Patient/123/Medication', no(404, 'not-in-compartment')],
  ['GET', '/Encounter/e1/Practitioner', no(404, 'not-in-compartment')],
  ['GET', '/Device/d1/Device', no(404, 'not-in-compartment')],
  ['POST', '/Patient/123/Medication/_search', no(404, 'not-in-compartment'), { form: 'code=x' }],
  ['GET', '/Patient/123/Patient', I('search-type', 'type', { resourceType: 'Patient', compartment: { resourceType: 'Patient', id: '123' } })],
  ['GET', '/Encounter/e1/Encounter', I('search-type', 'type', { resourceType: 'Encounter', compartment: { resourceType: 'Encounter', id: 'e1' } })],
  ['GET', '/Patient/123/foo', no(404, 'unknown-path')],
  ['POST', '/Patient/123/Observation', no(405, 'method-not-allowed')],
  ['DELETE', '/Patient/123/*', no(405, 'method-not-allowed')],
  ['GET', '/Patient/bad_id/Observation', no(400, 'bad-id')],

  // capabilities
  ['GET', '/metadata', I('capabilities', 'system')],
  ['HEAD', '/metadata', I('capabilities', 'system')],
  ['GET', '/metadata?mode=terminology', I('capabilities', 'system', { params: [P('mode', 'terminology')] })],
  ['POST', '/metadata', no(405, 'method-not-allowed')],
  ['PUT', '/metadata', no(405, 'method-not-allowed')],
  ['DELETE', '/metadata', no(405, 'method-not-allowed')],

  // operations
  ['GET', '/$meta', I('operation', 'system', { operation: '$meta' })],
  ['GET', '/%24meta', I('operation', 'system', { operation: '$meta' })],
  ['POST', '/$convert', I('operation', 'system', { operation: '$convert' })],
  ['POST', '/$process-message', I('operation', 'system', { operation: '$process-message' })],
  ['POST', '/Patient/$validate', I('operation', 'type', { resourceType: 'Patient', operation: '$validate' })],
  [
    'GET',
    '/ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender',
    I('operation', 'type', { resourceType: 'ValueSet', operation: '$expand', params: [P('url', 'http://hl7.org/fhir/ValueSet/administrative-gender')] }),
  ],
  ['POST', '/CodeSystem/$validate-code', I('operation', 'type', { resourceType: 'CodeSystem', operation: '$validate-code' })],
  ['GET', '/Patient/123/$everything', I('operation', 'instance', { resourceType: 'Patient', id: '123', operation: '$everything' })],
  ['HEAD', '/Patient/123/$everything', I('operation', 'instance', { resourceType: 'Patient', id: '123', operation: '$everything' })],
  ['POST', '/Patient/123/$everything', I('operation', 'instance', { resourceType: 'Patient', id: '123', operation: '$everything' })],
  ['POST', '/Patient/123/$meta-add', I('operation', 'instance', { resourceType: 'Patient', id: '123', operation: '$meta-add' })],
  ['GET', '/ValueSet/vs1/$validate-code', I('operation', 'instance', { resourceType: 'ValueSet', id: 'vs1', operation: '$validate-code' })],
  ['GET', '/Patient/123/_history/2/$meta', I('operation', 'instance', { resourceType: 'Patient', id: '123', versionId: '2', operation: '$meta' })],
  ['DELETE', '/Patient/$validate', no(405, 'method-not-allowed')],
  ['PUT', '/$meta', no(405, 'method-not-allowed')],
  ['PATCH', '/Patient/1/$everything', no(405, 'method-not-allowed')],
  ['GET', '/Patient/123/$', no(400, 'bad-path')],
  ['GET', '/Patient/$1abc', no(400, 'bad-path')],
  ['POST', '/$a%20b', no(400, 'bad-path')],
  ['GET', '/Patient/123/_history/2/foo', no(404, 'unknown-path')],
  ['GET', '/Patient/123/$everything/x', no(404, 'unknown-path')],

  // bad paths, types and methods
  ['GET', '/Patient/..%2FObservation', no(400, 'bad-path')],
  ['GET', '/Patient/%2F', no(400, 'bad-path')],
  ['GET', '/Patient/%2f123', no(400, 'bad-path')],
  ['GET', '/Patient/a%5Cb', no(400, 'bad-path')],
  ['GET', '/Patient/../Observation', no(400, 'bad-path')],
  ['GET', '/Patient/./123', no(400, 'bad-path')],
  ['GET', '/Patient/%2e%2e/Observation', no(400, 'bad-path')],
  ['GET', '/Patient/%2E', no(400, 'bad-path')],
  ['GET', '//Patient/1', no(400, 'bad-path')],
  ['GET', '/Patient//1', no(400, 'bad-path')],
  ['GET', '/Patient/1/', no(400, 'bad-path')],
  ['GET', '/Patient/1%00', no(400, 'bad-path')],
  ['GET', '/Patient/1\u0000', no(400, 'bad-path')],
  ['GET', '/Patient/1;jsessionid=x', no(400, 'bad-path')],
  ['GET', '/Patient\\1', no(400, 'bad-path')],
  ['GET', '/Patient/%zz', no(400, 'bad-path')],
  ['GET', '/Patient/%E9', no(400, 'bad-path')],
  ['GET', `/Patient/${'x'.repeat(2000)}`, no(400, 'bad-path')],
  ['GET', '/Patient/1/_history/2/$meta/x', no(404, 'unknown-path')],
  ['GET', '/Foo', no(404, 'unknown-type')],
  ['GET', '/Foo/1', no(404, 'unknown-type')],
  ['GET', '/Resource/1', no(404, 'unknown-type')],
  ['GET', '/DomainResource/1', no(404, 'unknown-type')],
  ['GET', '/patient/1', no(404, 'unknown-path')],
  ['GET', '/foo', no(404, 'unknown-path')],
  ['GET', '/Patient/1/2', no(404, 'unknown-path')],
  ['GET', '/Patient/1/_history/2/3', no(404, 'unknown-path')],
  ['GET', '/_search/x', no(404, 'unknown-path')],
  ['OPTIONS', '/Patient', no(405, 'method-not-allowed')],
  ['TRACE', '/', no(405, 'method-not-allowed')],
  ['CONNECT', '/Patient/1', no(405, 'method-not-allowed')],
  ['PROPFIND', '/Patient', no(405, 'method-not-allowed')],
  ['PUT', '/', no(405, 'method-not-allowed')],
  ['DELETE', '/', no(405, 'method-not-allowed')],
  ['PATCH', '/', no(405, 'method-not-allowed')],

  // batch and transaction
  [
    'POST',
    '/',
    I('batch', 'system', {
      entries: [
        I('read', 'instance', { resourceType: 'Patient', id: '1' }),
        I('create', 'type', { resourceType: 'Patient' }),
        I('delete', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x')] }),
        I('search-type', 'type', { resourceType: 'Observation', params: [P('subject', 'Patient/1')] }),
      ],
    }),
    {
      body: bundle(
        'batch',
        { method: 'GET', url: 'Patient/1' },
        { method: 'POST', url: 'Patient' },
        { method: 'DELETE', url: 'Patient?identifier=x' },
        { method: 'GET', url: 'Observation?subject=Patient/1' },
      ),
    },
  ],
  [
    'POST',
    '/',
    I('transaction', 'system', {
      entries: [
        I('update', 'instance', { resourceType: 'Patient', id: '1' }),
        I('create', 'type', { resourceType: 'Observation', conditional: true, params: [P('identifier', 'o1')] }),
        I('patch', 'instance', { resourceType: 'Patient', id: '2' }),
        I('update', 'type', { resourceType: 'Patient', conditional: true, params: [P('identifier', 'x')] }),
      ],
    }),
    {
      body: bundle(
        'transaction',
        { method: 'PUT', url: 'Patient/1' },
        { method: 'POST', url: 'Observation', ifNoneExist: 'identifier=o1' },
        { method: 'PATCH', url: 'Patient/2' },
        { method: 'PUT', url: 'Patient?identifier=x' },
      ),
    },
  ],
  [
    'POST',
    '/',
    I('batch', 'system', {
      entries: [
        I('read', 'instance', { resourceType: 'Patient', id: '1' }),
        I('capabilities', 'system'),
        I('vread', 'instance', { resourceType: 'Patient', id: '1', versionId: '2' }),
        I('operation', 'instance', { resourceType: 'Patient', id: '1', operation: '$everything' }),
        I('search-type', 'type', { resourceType: 'Observation', compartment: { resourceType: 'Patient', id: '1' } }),
      ],
    }),
    {
      body: bundle(
        'batch',
        { method: 'HEAD', url: '/Patient/1' },
        { method: 'GET', url: 'metadata' },
        { method: 'GET', url: 'Patient/1/_history/2' },
        { method: 'GET', url: 'Patient/1/$everything' },
        { method: 'GET', url: 'Patient/1/Observation' },
      ),
    },
  ],
  ['POST', '/', I('batch', 'system', { entries: [] }), { body: { resourceType: 'Bundle', type: 'batch' } }],
  ['POST', '/', I('transaction', 'system', { entries: [] }), { body: { resourceType: 'Bundle', type: 'transaction', entry: [] } }],
  [
    'POST',
    '/?_format=json',
    I('batch', 'system', { params: [P('_format', 'json')], entries: [I('read', 'instance', { resourceType: 'Patient', id: '1' })] }),
    { body: bundle('batch', { method: 'GET', url: 'Patient/1' }) },
  ],
  [
    'POST',
    '',
    I('transaction', 'system', { entries: [I('read', 'instance', { resourceType: 'Patient', id: '1' })] }),
    {
      body: bundle('transaction', { method: 'GET', url: 'https://fhir.example.org/fhir/Patient/1' }),
      headers: { host: 'FHIR.example.org' },
      base: '/fhir',
    },
  ],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('transaction', { method: 'GET', url: 'https://other.example.org/fhir/Patient/1' }), headers: { host: 'fhir.example.org' }, base: '/fhir' }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('transaction', { method: 'GET', url: 'https://fhir.example.org/other/Patient/1' }), headers: { host: 'fhir.example.org' }, base: '/fhir' }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'GET', url: 'http://fhir.example.org/fhir/Patient/1' }), headers: { host: 'fhir.example.org' } }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'GET', url: 'urn:uuid:1c7e5f0a-0000-4000-8000-000000000000' }) }],
  // Colons in the query (token systems) are not a scheme.
  [
    'POST',
    '/',
    I('batch', 'system', {
      entries: [
        I('search-type', 'type', { resourceType: 'Patient', params: [P('identifier', 'urn:oid:1.2.3|42')] }),
        I('update', 'type', { resourceType: 'Observation', conditional: true, params: [P('code', 'http://loinc.org|1234-5')] }),
      ],
    }),
    { body: bundle('batch', { method: 'GET', url: 'Patient?identifier=urn:oid:1.2.3|42' }, { method: 'PUT', url: 'Observation?code=http://loinc.org|1234-5' }) },
  ],
  ['POST', '/', no(400, 'bad-bundle'), { body: { resourceType: 'Bundle', type: 'collection', entry: [] } }],
  ['POST', '/', no(400, 'bad-bundle'), { body: { resourceType: 'Bundle', type: 'message' } }],
  ['POST', '/', no(400, 'bad-bundle'), { body: pt }],
  ['POST', '/', no(400, 'bad-bundle')],
  ['POST', '/', no(400, 'bad-bundle'), { body: { resourceType: 'Bundle', type: 'batch', entry: {} } }],
  ['POST', '/', no(400, 'bad-bundle'), { body: { resourceType: 'Bundle', type: 'batch', entry: [{ resource: pt }] } }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'OPTIONS', url: 'Patient' }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'get', url: 'Patient/1' }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'GET' }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'GET', url: 'Patient/1#x' }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('batch', { method: 'POST', url: 'Patient', ifNoneExist: 7 }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('transaction', { method: 'POST', url: '' }) }],
  ['POST', '/', no(400, 'bad-bundle'), { body: bundle('transaction', { method: 'POST', url: '/' }) }],
  ['POST', '/', no(400, 'unknown-type'), { body: bundle('batch', { method: 'GET', url: 'Foo/1' }) }],
  ['POST', '/', no(400, 'unknown-path'), { body: bundle('batch', { method: 'GET', url: 'foo/1' }) }],
  ['POST', '/', no(400, 'bad-id'), { body: bundle('batch', { method: 'GET', url: 'Patient/bad_id' }) }],
  ['POST', '/', no(400, 'bad-path'), { body: bundle('transaction', { method: 'PUT', url: 'Patient/../Observation/1' }) }],
  ['POST', '/', no(400, 'bad-query'), { body: bundle('batch', { method: 'GET', url: 'Patient?name=%zz' }) }],
  ['POST', '/', no(400, 'missing-criteria'), { body: bundle('transaction', { method: 'DELETE', url: 'Patient' }) }],
  ['POST', '/', no(400, 'method-not-allowed'), { body: bundle('transaction', { method: 'POST', url: 'Patient/1' }) }],
];

describe('classify: the R4 RESTful API table', () => {
  it('has at least 150 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(150);
  });

  it.each(CASES.map((c, i) => [i, c[0], c[1].length > 70 ? `${c[1].slice(0, 70)}...` : c[1], c] as const))('#%i %s %s', (_i, _m, _u, [method, url, expected, req]) => {
    const run = (): Interaction => classify(view(method, url, req));
    if ('kind' in expected) {
      expect(run()).toEqual(expected);
    } else {
      let error: unknown;
      try {
        run();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(FhirError);
      const e = error as FhirError;
      expect({ status: e.status, reason: e.reason }).toEqual(expected);
      const outcome = e.toOutcome();
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue.length).toBeGreaterThan(0);
      expect(outcome.issue[0].diagnostics.length).toBeGreaterThan(10);
    }
  });
});

describe('classify: refusals carry what the response needs', () => {
  it('405 lists the allowed methods', () => {
    const err = (() => {
      try {
        classify(view('POST', '/Patient/123'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MethodNotAllowedError);
    expect((err as MethodNotAllowedError).allow).toEqual(['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE']);
    expect((err as MethodNotAllowedError).issues[0].code).toBe('not-supported');
  });

  it('unknown types are not-supported, unknown paths not-found', () => {
    for (const [url, code] of [
      ['/Foo/1', 'not-supported'],
      ['/foo/1', 'not-found'],
    ] as const) {
      try {
        classify(view('GET', url));
        throw new Error('classified');
      } catch (e) {
        expect((e as FhirError).issues[0].code).toBe(code);
      }
    }
  });

  it('an entry refusal names the entry index and its URL', () => {
    try {
      classify(view('POST', '/', { body: bundle('batch', { method: 'GET', url: 'Patient/1' }, { method: 'GET', url: 'Foo/2' }) }));
      throw new Error('classified');
    } catch (e) {
      const err = e as FhirError;
      expect(err.status).toBe(400);
      expect(err.issues[0].diagnostics).toContain('Bundle.entry[1].request');
      expect(err.issues[0].diagnostics).toContain('Foo/2');
      expect(err.issues[0].expression).toEqual(['Bundle.entry[1].request.url']);
    }
  });

  it('diagnostics never echo control characters or unbounded input', () => {
    try {
      classify(view('GET', `/Foo\u0007${'Z'.repeat(900)}/1`));
      throw new Error('classified');
    } catch (e) {
      const d = (e as FhirError).issues[0].diagnostics;
      expect(d).not.toMatch(/[\u0000-\u001f]/);
      expect(d.length).toBeLessThan(300);
    }
  });
});

describe('classify: the Synthea transactions', () => {
  const dir = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus', 'synthea');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'index.json') : [];

  it('finds the corpus', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it('classifies every bundle as a transaction of creates of known types', () => {
    let total = 0;
    for (const f of files) {
      const body = parseJsonBody(fs.readFileSync(path.join(dir, f)), { maxDepth: 64 }) as {
        entry: { request: { method: string; url: string } }[];
      };
      const i = classify(view('POST', '/', { body }));
      expect(i.kind).toBe('transaction');
      expect(i.entries).toHaveLength(body.entry.length);
      i.entries!.forEach((e, k) => {
        const req = body.entry[k].request;
        expect(e.kind).toBe(req.method === 'POST' ? 'create' : 'update');
        expect(e.resourceType).toBe(req.url.split(/[/?]/)[0]);
      });
      total += i.entries!.length;
    }
    expect(total).toBeGreaterThan(1000);
  });
});
