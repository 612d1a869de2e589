// Search parameters: names, modifiers, value formats, chains, result parameters, and the
// strict/lenient handling of unknown parameters. Every refusal is a 400 with one issue per
// problem, located by the parameter as it appeared in the query.

import type { Interaction, SearchParam } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { validateRequest } from '../../src/fhir/validate';

function search(resourceType: string | undefined, params: SearchParam[]): Interaction {
  return { kind: resourceType ? 'search-type' : 'search-system', level: resourceType ? 'type' : 'system', resourceType, conditional: false, params };
}

function refusal(i: Interaction, lenient = false): FhirError {
  try {
    validateRequest(i, undefined, { lenient });
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

function expectRefused(resourceType: string | undefined, p: SearchParam, code: string, expression: string): void {
  const e = refusal(search(resourceType, [p]));
  expect(e.status).toBe(400);
  expect(e.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([[code, expression]]);
}

describe('valid searches pass', () => {
  test.each([
    ['Patient', [{ name: 'name', value: 'Doe' }, { name: 'name', modifier: 'exact', value: 'Doe' }, { name: 'birthdate', value: 'ge2000-01-01' }, { name: 'birthdate', value: 'lt2010' }]],
    ['Patient', [{ name: 'gender', value: 'male,female' }, { name: 'identifier', value: 'http://x.org|123' }, { name: 'identifier', value: '|123' }, { name: 'active', modifier: 'missing', value: 'false' }]],
    ['Observation', [{ name: 'subject', value: 'Patient/123' }, { name: 'subject', modifier: 'Patient', value: '123' }, { name: 'subject', modifier: 'Patient', chain: 'name', value: 'Doe' }]],
    ['Observation', [{ name: 'value-quantity', value: 'gt5.4|http://unitsofmeasure.org|mg' }, { name: 'code-value-quantity', value: 'http://loinc.org|8480-6$ge100' }, { name: 'date', value: 'ap2020-01-01T10:00:00Z' }]],
    ['Patient', [{ name: '_has', modifier: 'Observation:patient:code', value: '1234-5' }, { name: '_include', value: 'Patient:organization' }, { name: '_revinclude', modifier: 'iterate', value: 'Observation:subject' }]],
    ['Patient', [{ name: '_count', value: '10' }, { name: '_offset', value: '20' }, { name: '_sort', value: '-birthdate,name' }, { name: '_summary', value: 'count' }, { name: '_total', value: 'accurate' }, { name: '_elements', value: 'id,name' }]],
    [undefined, [{ name: '_type', value: 'Patient,Observation' }, { name: '_lastUpdated', value: 'gt2020-01-01' }, { name: '_id', value: 'a1' }]],
    ['Patient', [{ name: 'general-practitioner', modifier: 'Practitioner', chain: 'name', value: 'x' }, { name: '_list', value: 'l1' }, { name: '_tag', value: 'http://x|y' }]],
  ] as [string | undefined, SearchParam[]][])('%s %j', (type, params) => {
    expect(validateRequest(search(type, params), undefined)).toEqual({ warnings: [], droppedParams: [] });
  });
});

describe('unknown names (strict: 400)', () => {
  test.each([
    ['Patient', { name: 'nickname', value: 'x' }, 'nickname'],
    ['Patient', { name: 'code', value: 'x' }, 'code'],
    [undefined, { name: 'name', value: 'x' }, 'name'],
    ['Observation', { name: '_filter', value: 'x' }, '_filter'],
    ['Patient', { name: 'general-practitioner', chain: 'nickname', value: 'x' }, 'general-practitioner.nickname'],
    ['Patient', { name: '_has', modifier: 'Observation:patient:nickname', value: 'x' }, '_has:Observation:patient:nickname'],
  ] as [string | undefined, SearchParam, string][])('%s %j', (type, p, expression) => {
    expectRefused(type, p, 'not-supported', expression);
  });
});

describe('modifiers must fit the type', () => {
  test.each([
    [{ name: 'gender', modifier: 'exact', value: 'male' }, 'gender:exact'],
    [{ name: 'birthdate', modifier: 'contains', value: '2000' }, 'birthdate:contains'],
    [{ name: 'name', modifier: 'text', value: 'x' }, 'name:text'],
    [{ name: 'family', modifier: 'below', value: 'x' }, 'family:below'],
    [{ name: 'general-practitioner', modifier: 'identifier2', value: 'x' }, 'general-practitioner:identifier2'],
    [{ name: '_count', modifier: 'exact', value: '5' }, '_count:exact'],
  ] as [SearchParam, string][])('%j', (p, expression) => {
    expectRefused('Patient', p, 'not-supported', expression);
  });

  test('a reference modifier must be one of its targets', () => {
    expectRefused('Patient', { name: 'general-practitioner', modifier: 'Patient', value: '1' }, 'invalid', 'general-practitioner:Patient');
  });
});

describe('values must parse for the type', () => {
  test.each([
    ['Patient', { name: 'birthdate', value: 'ge2000-13-01' }, 'birthdate'],
    ['Patient', { name: 'birthdate', value: 'xx2000' }, 'birthdate'],
    ['RiskAssessment', { name: 'probability', value: 'gtabc' }, 'probability'],
    ['Patient', { name: 'identifier', value: 'a|b|c' }, 'identifier'],
    ['Observation', { name: 'subject', value: 'Medication/1' }, 'subject'],
    ['Observation', { name: 'subject', value: 'Patient/a b' }, 'subject'],
    ['Observation', { name: 'value-quantity', value: '5|http://unitsofmeasure.org' }, 'value-quantity'],
    ['Observation', { name: 'code-value-quantity', value: 'http://loinc.org|8480-6' }, 'code-value-quantity'],
    ['ValueSet', { name: 'url', value: 'http://x.org/a b' }, 'url'],
    ['Patient', { name: 'active', modifier: 'missing', value: 'yes' }, 'active:missing'],
    ['Patient', { name: 'name', value: '' }, 'name'],
    ['Patient', { name: '_count', value: '-1' }, '_count'],
    ['Patient', { name: '_offset', value: 'x' }, '_offset'],
    ['Patient', { name: '_summary', value: 'all' }, '_summary'],
    ['Patient', { name: '_include', value: 'Patient:gender' }, '_include'],
    ['Patient', { name: '_sort', value: 'nickname' }, '_sort'],
    [undefined, { name: '_type', value: 'Patient,Dog' }, '_type'],
  ] as [string | undefined, SearchParam, string][])('%s %j', (type, p, expression) => {
    expectRefused(type, p, 'invalid', expression);
  });

  test('a chain through a non-reference parameter', () => {
    expectRefused('Observation', { name: 'code', chain: 'name', value: 'x' }, 'invalid', 'code.name');
  });
});

describe('Prefer: handling=lenient', () => {
  test('drops unknown parameters with a warning each, keeps the rest', () => {
    const r = validateRequest(search('Patient', [{ name: 'nickname', value: 'x' }, { name: 'name', value: 'Doe' }, { name: 'colour', modifier: 'exact', value: 'y' }]), undefined, { lenient: true });
    expect(r.droppedParams).toEqual(['nickname', 'colour:exact']);
    expect(r.warnings.map((w) => [w.severity, w.code, w.expression?.[0]])).toEqual([
      ['warning', 'not-supported', 'nickname'],
      ['warning', 'not-supported', 'colour:exact'],
    ]);
  });

  test('still refuses bad values of known parameters', () => {
    const e = refusal(search('Patient', [{ name: 'nickname', value: 'x' }, { name: 'birthdate', value: 'yesterday' }]), true);
    expect(e.issues.map((x) => x.expression?.[0])).toEqual(['birthdate']);
  });

  test('one issue per problem', () => {
    const e = refusal(search('Patient', [{ name: 'nickname', value: 'x' }, { name: 'birthdate', value: 'yesterday' }, { name: 'gender', modifier: 'exact', value: 'm' }]));
    expect(e.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([
      ['not-supported', 'nickname'],
      ['invalid', 'birthdate'],
      ['not-supported', 'gender:exact'],
    ]);
  });
});

test('conditional interactions check their criteria too', () => {
  const i: Interaction = { kind: 'delete', level: 'type', resourceType: 'Patient', conditional: true, params: [{ name: 'nickname', value: 'x' }] };
  expect(() => validateRequest(i, undefined)).toThrow(FhirError);
});

describe('history parameters', () => {
  const history = (params: SearchParam[]): Interaction => ({ kind: 'history-type', level: 'type', resourceType: 'Patient', conditional: false, params });
  test('_count, _offset, _since and _at pass', () => {
    expect(validateRequest(history([{ name: '_count', value: '10' }, { name: '_offset', value: '10' }, { name: '_since', value: '2020-01-01T00:00:00Z' }, { name: '_at', value: 'ge2020-01' }]), undefined)).toEqual({
      warnings: [],
      droppedParams: [],
    });
  });
  test.each([
    [{ name: '_since', value: '2020-01-01' }, 'invalid', '_since'],
    [{ name: '_count', value: 'ten' }, 'invalid', '_count'],
    [{ name: '_offset', value: '-5' }, 'invalid', '_offset'],
    [{ name: '_at', value: 'soon' }, 'invalid', '_at'],
    [{ name: 'name', value: 'x' }, 'not-supported', 'name'],
    [{ name: '_count', modifier: 'exact', value: '1' }, 'not-supported', '_count:exact'],
  ] as [SearchParam, string, string][])('%j', (p, code, expression) => {
    const e = refusal(history([p]));
    expect([e.status, ...e.issues.map((x) => [x.code, x.expression?.[0]])]).toEqual([400, [code, expression]]);
  });
});
