// validateRequest as the proxy calls it: which interactions get which checks, and the
// status each refusal carries (400 for requests that do not fit the API, 422 for invalid
// content), with warnings returned rather than thrown.

import type { Interaction } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { validateRequest } from '../../src/fhir/validate';

function interaction(kind: Interaction['kind'], extra: Partial<Interaction> = {}): Interaction {
  return { kind, level: 'type', conditional: false, params: [], ...extra };
}

function refusal(i: Interaction, body: unknown): FhirError {
  try {
    validateRequest(i, body);
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

const where = (e: FhirError) => e.issues.map((i) => [i.code, i.expression?.[0]]);

describe('request-level rules (400)', () => {
  test('create without a body', () => {
    expect(refusal(interaction('create', { resourceType: 'Patient' }), undefined).status).toBe(400);
  });
  test('body of another type', () => {
    expect(refusal(interaction('create', { resourceType: 'Patient' }), { resourceType: 'Observation' }).reason).toBe('wrong-type');
  });
  test('update with another id', () => {
    const e = refusal(interaction('update', { level: 'instance', resourceType: 'Patient', id: '1' }), { resourceType: 'Patient', id: '2' });
    expect([e.status, e.reason]).toEqual([400, 'id-mismatch']);
  });
  test('transaction body that is not a transaction Bundle', () => {
    const e = refusal(interaction('transaction', { level: 'system' }), { resourceType: 'Bundle', type: 'batch', entry: [] });
    expect([e.status, e.reason]).toEqual([400, 'wrong-type']);
  });
  test('patch without a body', () => {
    expect(refusal(interaction('patch', { level: 'instance', resourceType: 'Patient', id: '1' }), undefined).status).toBe(400);
  });
});

describe('content (422, one issue per problem)', () => {
  test('create of an invalid resource lists every problem', () => {
    const e = refusal(interaction('create', { resourceType: 'Patient' }), { resourceType: 'Patient', gender: 'x', birthDate: '2020-13-01', nickname: 'y' });
    expect(e.status).toBe(422);
    expect(e.reason).toBe('invalid-resource');
    expect(where(e)).toEqual([
      ['code-invalid', 'Patient.gender'],
      ['value', 'Patient.birthDate'],
      ['structure', 'Patient.nickname'],
    ]);
  });
  test('update of an invalid resource', () => {
    const e = refusal(interaction('update', { level: 'instance', resourceType: 'Observation', id: 'o' }), { resourceType: 'Observation', id: 'o', code: { text: 'x' } });
    expect(where(e)).toEqual([['required', 'Observation.status']]);
  });
  test('an invalid transaction entry', () => {
    const body = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:2b8bd0aa-3c6b-4c3a-9a57-2c6e0b4f6a11', resource: { resourceType: 'Patient', gender: 'nope' }, request: { method: 'POST', url: 'Patient' } }],
    };
    const e = refusal(interaction('transaction', { level: 'system', entries: [interaction('create', { resourceType: 'Patient' })] }), body);
    expect([e.status, ...where(e)]).toEqual([422, ['code-invalid', 'Bundle.entry[0].resource.gender']]);
  });
  test('the Parameters of an $operation', () => {
    const e = refusal(interaction('operation', { resourceType: 'Patient', operation: '$match' }), {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', valueString: 'x', resource: { resourceType: 'Patient' } }],
    });
    expect(where(e)).toEqual([['invariant', 'Parameters.parameter[0]']]);
  });
  test('a resource inside the Parameters of an $operation', () => {
    const e = refusal(interaction('operation', { resourceType: 'Patient', operation: '$match' }), {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', resource: { resourceType: 'Patient', birthDate: 'yesterday' } }],
    });
    expect(where(e)).toEqual([['value', 'Parameters.parameter[0].resource.birthDate']]);
  });
  test('valid content passes and warnings are returned, not thrown', () => {
    const r = validateRequest(interaction('create', { resourceType: 'Patient' }), {
      resourceType: 'Patient',
      meta: { profile: ['http://example.org/fhir/StructureDefinition/unknown'] },
    });
    expect(r.warnings.map((w) => [w.severity, w.code, w.expression?.[0]])).toEqual([['warning', 'not-supported', 'Patient.meta.profile']]);
  });
  test('an unknown profile is an error when the caller says so', () => {
    const i = interaction('create', { resourceType: 'Patient' });
    const body = { resourceType: 'Patient', meta: { profile: ['http://example.org/fhir/StructureDefinition/unknown'] } };
    expect(() => validateRequest(i, body, { unknownProfileIsError: true })).toThrow(FhirError);
  });
});

describe('patch documents (422)', () => {
  const patch = interaction('patch', { level: 'instance', resourceType: 'Patient', id: '1' });
  test('a valid JSON Patch passes', () => {
    expect(
      validateRequest(patch, [
        { op: 'replace', path: '/birthDate', value: '2000-01-01' },
        { op: 'add', path: '/name/-', value: { family: 'Doe' } },
        { op: 'remove', path: '/telecom/0' },
        { op: 'move', from: '/name/1', path: '/name/0' },
        { op: 'test', path: '/gender', value: 'male' },
      ]).warnings,
    ).toEqual([]);
  });
  test.each([
    [[{ op: 'jump', path: '/gender' }], 'value', 'patch[0].op'],
    [[{ op: 'add', path: 'gender', value: 'male' }], 'value', 'patch[0].path'],
    [[{ op: 'add', path: '/nickname', value: 'x' }], 'structure', 'patch[0].path'],
    [[{ op: 'replace', path: '/id', value: 'x' }], 'forbidden', 'patch[0].path'],
    [[{ op: 'replace', path: '/gender' }], 'required', 'patch[0].value'],
    [[{ op: 'copy', path: '/name/0' }], 'required', 'patch[0].from'],
    [[{ op: 'replace', path: '/birthDate', value: '2000-02-30' }], 'value', 'Patient.birthDate'],
    [[{ op: 'add', path: '/name/0', value: { family: 'Doe', middle: 'X' } }], 'structure', 'Patient.name[0].middle'],
    [[{ op: 'replace', path: '/name/first', value: { family: 'Doe' } }], 'structure', 'patch[0].path'],
    [[], 'required', 'patch'],
  ])('%j', (doc, code, expression) => {
    expect(where(refusal(patch, doc))).toEqual([[code, expression]]);
  });
  test('a valid FHIRPath Patch passes', () => {
    expect(
      validateRequest(patch, {
        resourceType: 'Parameters',
        parameter: [
          {
            name: 'operation',
            part: [
              { name: 'type', valueCode: 'replace' },
              { name: 'path', valueString: 'Patient.birthDate' },
              { name: 'value', valueDate: '2000-01-01' },
            ],
          },
          {
            name: 'operation',
            part: [
              { name: 'type', valueCode: 'delete' },
              { name: 'path', valueString: 'Patient.telecom[0]' },
            ],
          },
        ],
      }).warnings,
    ).toEqual([]);
  });
  test.each([
    [
      [
        {
          name: 'op',
          part: [
            { name: 'type', valueCode: 'delete' },
            { name: 'path', valueString: 'Patient.x' },
          ],
        },
      ],
      'value',
      'Parameters.parameter[0].name',
    ],
    [
      [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'erase' },
            { name: 'path', valueString: 'Patient.x' },
          ],
        },
      ],
      'value',
      'Parameters.parameter[0].part',
    ],
    [
      [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'add' },
            { name: 'path', valueString: 'Patient' },
            { name: 'value', valueString: 'x' },
          ],
        },
      ],
      'required',
      'Parameters.parameter[0].part',
    ],
    [
      [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'delete' },
            { name: 'path', valueString: 'Patient.name[' },
          ],
        },
      ],
      'value',
      'Parameters.parameter[0].part',
    ],
    [
      [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'delete' },
            { name: 'path', valueString: 'Observation.code' },
          ],
        },
      ],
      'value',
      'Parameters.parameter[0].part',
    ],
    [
      [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'insert' },
            { name: 'path', valueString: 'Patient.name' },
            { name: 'index', valueString: '0' },
            { name: 'value', valueHumanName: { family: 'x' } },
          ],
        },
      ],
      'value',
      'Parameters.parameter[0].part',
    ],
  ])('%j', (parameter, code, expression) => {
    expect(where(refusal(patch, { resourceType: 'Parameters', parameter }))).toEqual([[code, expression]]);
  });
  test('a JSON Patch entry of a transaction (a Binary)', () => {
    const doc = Buffer.from(JSON.stringify([{ op: 'add', path: '/nickname', value: 'x' }])).toString('base64');
    const body = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: doc }, request: { method: 'PATCH', url: 'Patient/1' } }],
    };
    const e = refusal(interaction('transaction', { level: 'system', entries: [interaction('patch', { level: 'instance', resourceType: 'Patient', id: '1' })] }), body);
    expect(where(e)).toEqual([['structure', 'Bundle.entry[0].resource.data[0].path']]);
  });
});
