// A patient-scoped request, before and after it is sent: membership of the Patient
// compartment from R4's compartment parameters, the narrowing added to searches, what is
// refused before sending, and what an upstream's answer becomes (filtered, or the uniform
// "not found" that cannot be told from a resource that does not exist).

import { checkPatientBody, restrictToPatient } from '../../src/auth/patient-access';
import { inPatientCompartment, narrowingParam } from '../../src/auth/patient-compartment';
import { checkPatientResponse } from '../../src/auth/patient-response';
import { classify } from '../../src/fhir/classify';
import { FhirError } from '../../src/fhir/outcome';
import { loadSearchParameters } from '../../src/fhir/search-parameters';
import { loadReferenceGraph } from '../../src/policy/reference-graph';

beforeAll(() => {
  loadSearchParameters();
  loadReferenceGraph();
});

function req(method: string, url: string) {
  const q = url.indexOf('?');
  return classify({ method, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: {} });
}

function before(method: string, url: string): unknown {
  try {
    return restrictToPatient(req(method, url), 'p1');
  } catch (e) {
    if (!(e instanceof FhirError)) throw e;
    return { status: e.status, reason: e.reason, diagnostics: e.message };
  }
}

const obs = (subject: string, performer?: string) => ({
  resourceType: 'Observation',
  id: 'o',
  status: 'final',
  code: { text: 'x' },
  subject: { reference: subject },
  ...(performer ? { performer: [{ reference: performer }] } : {}),
});

describe('membership', () => {
  test.each([
    [obs('Patient/p1'), true],
    [obs('Patient/p1/_history/3'), true],
    [obs('Patient/p2'), false],
    [obs('Patient/p2', 'Patient/p1'), true],
    [obs('Group/p1'), false],
    [obs('Patient/p10'), false],
    [{ resourceType: 'Patient', id: 'p1' }, true],
    [{ resourceType: 'Patient', id: 'p2' }, false],
    [{ resourceType: 'Patient', id: 'p2', link: [{ other: { reference: 'Patient/p1' }, type: 'seealso' }] }, true],
    [{ resourceType: 'Condition', id: 'c', subject: { reference: 'Patient/p1' } }, true],
    [{ resourceType: 'Condition', id: 'c', subject: { reference: 'Group/g' }, asserter: { reference: 'Patient/p1' } }, true],
    [{ resourceType: 'Appointment', id: 'a', participant: [{ actor: { reference: 'Practitioner/x' } }, { actor: { reference: 'Patient/p1' } }] }, true],
    [{ resourceType: 'Practitioner', id: 'x' }, false],
  ])('%j is in the compartment of Patient/p1: %s', (resource, member) => {
    expect(inPatientCompartment(resource, 'p1')).toBe(member);
  });

  test.each([
    ['Patient', '_id'],
    ['Observation', 'subject'],
    ['Condition', 'patient'],
    ['Coverage', 'beneficiary'],
    ['Practitioner', undefined],
  ])('a search of %s is narrowed by %s', (type, param) => {
    expect(narrowingParam(type)).toBe(param);
  });
});

describe('before sending', () => {
  test.each([
    ['GET', '/Observation?code=x', [['subject', 'Patient/p1']]],
    ['GET', '/Patient?name=x', [['_id', 'p1']]],
    ['GET', '/Practitioner?name=x', []],
    ['GET', '/Observation?_include=Observation:performer', [['subject', 'Patient/p1']]],
    ['GET', '/Observation/1', []],
    ['GET', '/Patient/p1', []],
    ['GET', '/Patient/p1/$everything', []],
    ['GET', '/Patient/p1/Observation', [['subject', 'Patient/p1']]],
    ['PUT', '/Observation/1', []],
    ['PATCH', '/Observation/1', []],
    ['DELETE', '/Observation/1', []],
    ['PUT', '/Patient/p1', []],
  ])('%s %s goes, narrowed by %j', (method, url, added) => {
    expect(before(method, url)).toEqual(added);
  });

  test.each([
    ['GET', '/Patient/p2', 404, 'not-found'],
    ['GET', '/Patient/p2/_history/1', 404, 'not-found'],
    ['GET', '/Patient/p2/$everything', 404, 'not-found'],
    ['GET', '/Patient/p2/Observation', 403, 'patient-scope'],
    ['GET', '/Observation?subject.name=x', 403, 'patient-scope'],
    ['GET', '/Observation?performer:Patient.name=x', 403, 'patient-scope'],
    ['GET', '/Practitioner?_has:Observation:performer:code=x', 403, 'patient-scope'],
    ['GET', '/?_type=Observation', 403, 'patient-scope'],
    ['GET', '/Observation/_history', 403, 'patient-scope'],
    ['PUT', '/Patient/p2', 404, 'not-found'],
    ['DELETE', '/Patient/p2', 404, 'not-found'],
    ['PUT', '/Practitioner/x', 403, 'patient-scope'],
    ['DELETE', '/Observation?code=x', 403, 'patient-scope'],
    ['POST', '/Patient', 403, 'patient-scope'],
  ])('%s %s is refused: %i %s', (method, url, status, reason) => {
    expect(before(method, url)).toMatchObject({ status, reason });
  });

  test.each([
    ['POST', '/Observation'],
    ['PUT', '/Observation/o'],
  ])('%s %s: the body must refer to the patient', (method, path) => {
    const write = classify({ method, path, query: '', headers: { 'content-type': 'application/fhir+json' }, body: obs('Patient/p2') });
    expect(() => checkPatientBody(write, obs('Patient/p2'), 'p1')).toThrow(/this Observation would not refer to the launch patient/);
    expect(() => checkPatientBody(write, obs('Patient/p1'), 'p1')).not.toThrow();
  });
});

describe('the answer', () => {
  const answer = (method: string, url: string, status: number, body: unknown) => {
    const r = checkPatientResponse(req(method, url), status, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), 'p1');
    return r.kind === 'replace' ? { kind: 'replace', body: JSON.parse(r.body.toString()) } : r;
  };

  test("a read of the patient's resource passes; of another patient's, and a 404 or 410, is the uniform not found", () => {
    expect(answer('GET', '/Observation/o', 200, obs('Patient/p1'))).toEqual({ kind: 'pass' });
    expect(answer('GET', '/Observation/o', 200, obs('Patient/p2'))).toEqual({ kind: 'not-found' });
    expect(answer('GET', '/Observation/o', 404, { resourceType: 'OperationOutcome', issue: [] })).toEqual({ kind: 'not-found' });
    expect(answer('GET', '/Observation/o', 410, '')).toEqual({ kind: 'not-found' });
    expect(answer('GET', '/Observation/o', 200, 'not json')).toEqual({ kind: 'unreadable' });
  });

  test("a search keeps the patient's entries and what lies outside the compartment; drops others' and the total", () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: 2,
      entry: [
        { resource: obs('Patient/p1'), search: { mode: 'match' } },
        { resource: obs('Patient/p2'), search: { mode: 'match' } },
        { resource: { resourceType: 'Practitioner', id: 'x' }, search: { mode: 'include' } },
        { resource: { resourceType: 'Patient', id: 'p2' }, search: { mode: 'include' } },
      ],
    };
    expect(answer('GET', '/Observation?_include=Observation:performer', 200, bundle)).toEqual({
      kind: 'replace',
      body: { resourceType: 'Bundle', type: 'searchset', entry: [bundle.entry[0], bundle.entry[2]] },
    });
    const own = { ...bundle, entry: [bundle.entry[0]] };
    expect(answer('GET', '/Observation', 200, own)).toEqual({ kind: 'pass' });
  });

  test("an instance history passes only when every version is the patient's", () => {
    const history = (...subjects: string[]) => ({ resourceType: 'Bundle', type: 'history', entry: subjects.map((s) => ({ resource: obs(s) })) });
    expect(answer('GET', '/Observation/o/_history', 200, history('Patient/p1', 'Patient/p1'))).toEqual({ kind: 'pass' });
    expect(answer('GET', '/Observation/o/_history', 200, history('Patient/p1', 'Patient/p2'))).toEqual({ kind: 'not-found' });
    expect(answer('GET', '/Observation/o/_history', 200, history())).toEqual({ kind: 'not-found' });
  });
});
