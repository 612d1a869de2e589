// What a token's scopes let a request do, decided before anything is sent: the type itself
// and every type a search reaches or a bundle entry touches, with user/system scopes
// unrestricted, patient scopes restricting to the launch patient's compartment, granular
// scopes narrowing a search, and the 403's diagnostic and challenge when a scope is missing.

import { authorize } from '../../src/auth/access';
import type { Identity } from '../../src/auth/identity';
import { parseScopes } from '../../src/auth/scopes';
import { classify } from '../../src/fhir/classify';
import { FhirError } from '../../src/fhir/outcome';
import { loadSearchParameters } from '../../src/fhir/search-parameters';
import { loadReferenceGraph } from '../../src/policy/reference-graph';

beforeAll(() => {
  loadSearchParameters();
  loadReferenceGraph();
});

function who(scopes: string, patient?: string): Identity {
  const list = scopes.split(' ').filter(Boolean);
  return { issuer: 'https://issuer.test', clientId: 'app', scopes: list, grants: parseScopes(list), expiresAt: Date.now() + 60_000, verifiedBy: 'jwt', ...(patient ? { patient } : {}) };
}

function req(method: string, url: string, body?: unknown) {
  const q = url.indexOf('?');
  return classify({ method, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: body ? { 'content-type': 'application/fhir+json' } : {}, body });
}

/** The access granted, or the refusal's status, reason, diagnostic and challenge. */
function decide(method: string, url: string, scopes: string, patient?: string, body?: unknown): unknown {
  try {
    return authorize(req(method, url, body), who(scopes, patient));
  } catch (e) {
    if (!(e instanceof FhirError)) throw e;
    return { status: e.status, reason: e.reason, diagnostics: e.message, challenge: e.headers?.['www-authenticate'] };
  }
}

test.each([
  ['GET', '/Patient/1', 'user/Patient.r'],
  ['GET', '/Observation?code=x', 'user/Observation.s'],
  ['GET', '/Observation?code=x', 'system/*.rs'],
  ['POST', '/Observation', 'user/Observation.c'],
  ['PUT', '/Observation/1', 'user/Observation.u'],
  ['DELETE', '/Observation/1', 'user/Observation.d'],
  ['GET', '/Observation/1/_history', 'user/Observation.r'],
  ['GET', '/metadata', ''],
  ['GET', '/Encounter?_include=Encounter:practitioner', 'user/Encounter.s user/Practitioner.s'],
  ['GET', '/Patient/1', 'user/Patient.read'],
])('%s %s with %s: unrestricted', (method, url, scopes) => {
  expect(decide(method, url, scopes, undefined, method === 'POST' || method === 'PUT' ? { resourceType: 'Observation', id: '1', status: 'final', code: { text: 'x' } } : undefined)).toEqual({});
});

test('a search needs a scope for every type it reaches: _include, _revinclude, chains, _has, _type', () => {
  const missing = (url: string, scopes: string) => (decide('GET', url, scopes) as { diagnostics: string }).diagnostics;
  expect(missing('/Encounter?_include=Encounter:practitioner', 'user/Encounter.s')).toBe(
    "the Encounter?_include=Encounter:practitioner needs a scope granting s on Practitioner (e.g. user/Practitioner.s); the token's scopes do not",
  );
  expect(missing('/Patient?_revinclude=AuditEvent:patient', 'user/Patient.s')).toMatch(/needs a scope granting s on AuditEvent/);
  expect(missing('/Observation?subject:Patient.name=x', 'user/Observation.s')).toMatch(/needs a scope granting s on Patient/);
  expect(missing('/Patient?_has:Observation:patient:code=x', 'user/Patient.s')).toMatch(/needs a scope granting s on Observation/);
  expect(missing('/?_type=Patient,Observation&_id=1', 'user/Patient.s')).toMatch(/needs a scope granting s on every resource type|needs a scope granting s on Observation/);
});

test('the refusal is 403 insufficient_scope with a challenge naming a scope that would do', () => {
  expect(decide('POST', '/Observation', 'user/Observation.rs', undefined, { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).toEqual({
    status: 403,
    reason: 'insufficient-scope',
    diagnostics: "the create of Observation needs a scope granting c on Observation (e.g. user/Observation.c); the token's scopes do not",
    challenge:
      'Bearer error="insufficient_scope", error_description="the create of Observation needs a scope granting c on Observation (e.g. user/Observation.c); the token\'s scopes do not", scope="user/Observation.c"',
  });
});

test('batch and transaction entries each need their scope', () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [{ request: { method: 'GET', url: 'Patient/1' } }, { request: { method: 'DELETE', url: 'Observation/2' } }],
  };
  expect(decide('POST', '/', 'user/Patient.r', undefined, bundle)).toMatchObject({
    status: 403,
    diagnostics: expect.stringMatching(/^the Bundle.entry\[1\]: delete of Observation needs a scope granting d on Observation/),
  });
  expect(decide('POST', '/', 'user/Patient.r user/Observation.d', undefined, bundle)).toEqual({});
});

test('patient scopes restrict to the launch patient; without one they grant nothing', () => {
  expect(decide('GET', '/Observation?code=x', 'patient/Observation.rs', 'p1')).toEqual({ patient: 'p1' });
  expect(decide('GET', '/Observation?code=x', 'patient/Observation.rs user/Observation.rs', 'p1')).toEqual({});
  expect(decide('GET', '/Observation?code=x', 'patient/Observation.rs')).toMatchObject({
    status: 403,
    diagnostics: 'the search of Observation is granted only by patient/ scopes, and the token names no launch patient',
  });
});

test('granular scopes narrow a search of their type, and nothing else', () => {
  const lab = 'user/Observation.rs?category=laboratory';
  expect(decide('GET', '/Observation?code=x', lab)).toEqual({ narrowing: [['category', 'laboratory']] });
  expect(decide('GET', '/Observation?category=laboratory', lab)).toEqual({});
  expect(decide('GET', '/Observation?code=x', `${lab} user/Observation.rs?category=vital-signs`)).toEqual({ narrowing: [['category', 'laboratory,vital-signs']] });
  expect(decide('GET', '/Observation?code=x', 'patient/Observation.rs?category=laboratory', 'p1')).toEqual({ patient: 'p1', narrowing: [['category', 'laboratory']] });
  expect(decide('GET', '/Observation/1', lab)).toMatchObject({ status: 403, reason: 'insufficient-scope' });
  expect(decide('GET', '/Observation?code=x', `${lab} user/Observation.rs?status=final&code=y`)).toMatchObject({
    status: 403,
    diagnostics: expect.stringMatching(/granted only by granular scopes that cannot be combined into one search/),
  });
});
