// Search parameters: names, modifiers, value formats, chains, result parameters, and the
// strict/lenient handling of unknown parameters. Every refusal is a 400 with one issue per
// problem, located by the parameter as it appeared in the query.

import type { Interaction, SearchParam } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { validateSearch } from '../../src/fhir/validate';

function search(resourceType: string | undefined, params: SearchParam[]): Interaction {
  return { kind: resourceType ? 'search-type' : 'search-system', level: resourceType ? 'type' : 'system', resourceType, conditional: false, params };
}

function refusal(i: Interaction, lenient = false): FhirError {
  try {
    validateSearch(i, lenient);
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
    [
      'Patient',
      [
        { name: 'name', value: 'Doe' },
        { name: 'name', modifier: 'exact', value: 'Doe' },
        { name: 'birthdate', value: 'ge2000-01-01' },
        { name: 'birthdate', value: 'lt2010' },
      ],
    ],
    [
      'Patient',
      [
        { name: 'gender', value: 'male,female' },
        { name: 'identifier', value: 'http://x.org|123' },
        { name: 'identifier', value: '|123' },
        { name: 'active', modifier: 'missing', value: 'false' },
      ],
    ],
    [
      'Observation',
      [
        { name: 'subject', value: 'Patient/123' },
        { name: 'subject', modifier: 'Patient', value: '123' },
        { name: 'subject', modifier: 'Patient', chain: 'name', value: 'Doe' },
      ],
    ],
    [
      'Observation',
      [
        { name: 'value-quantity', value: 'gt5.4|http://unitsofmeasure.org|mg' },
        { name: 'code-value-quantity', value: 'http://loinc.org|8480-6$ge100' },
        { name: 'date', value: 'ap2020-01-01T10:00:00Z' },
      ],
    ],
    [
      'Patient',
      [
        { name: '_has', modifier: 'Observation:patient:code', value: '1234-5' },
        { name: '_include', value: 'Patient:organization' },
        { name: '_revinclude', modifier: 'iterate', value: 'Observation:subject' },
      ],
    ],
    [
      'Patient',
      [
        { name: '_count', value: '10' },
        { name: '_offset', value: '20' },
        { name: '_sort', value: '-birthdate,name' },
        { name: '_summary', value: 'count' },
        { name: '_total', value: 'accurate' },
        { name: '_elements', value: 'id,name' },
      ],
    ],
    [
      undefined,
      [
        { name: '_type', value: 'Patient,Observation' },
        { name: '_lastUpdated', value: 'gt2020-01-01' },
        { name: '_id', value: 'a1' },
      ],
    ],
    [
      'Patient',
      [
        { name: 'general-practitioner', modifier: 'Practitioner', chain: 'name', value: 'x' },
        { name: '_list', value: 'l1' },
        { name: '_tag', value: 'http://x|y' },
      ],
    ],
  ] as [string | undefined, SearchParam[]][])('%s %j', (type, params) => {
    expect(validateSearch(search(type, params))).toEqual({ warnings: [], droppedParams: [] });
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
    const r = validateSearch(
      search('Patient', [
        { name: 'nickname', value: 'x' },
        { name: 'name', value: 'Doe' },
        { name: 'colour', modifier: 'exact', value: 'y' },
      ]),
      true,
    );
    expect(r.droppedParams).toEqual(['nickname', 'colour:exact']);
    expect(r.warnings.map((w) => [w.severity, w.code, w.expression?.[0]])).toEqual([
      ['warning', 'not-supported', 'nickname'],
      ['warning', 'not-supported', 'colour:exact'],
    ]);
  });

  test('still refuses bad values of known parameters', () => {
    const e = refusal(
      search('Patient', [
        { name: 'nickname', value: 'x' },
        { name: 'birthdate', value: 'yesterday' },
      ]),
      true,
    );
    expect(e.issues.map((x) => x.expression?.[0])).toEqual(['birthdate']);
  });

  test('one issue per problem', () => {
    const e = refusal(
      search('Patient', [
        { name: 'nickname', value: 'x' },
        { name: 'birthdate', value: 'yesterday' },
        { name: 'gender', modifier: 'exact', value: 'm' },
      ]),
    );
    expect(e.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([
      ['not-supported', 'nickname'],
      ['invalid', 'birthdate'],
      ['not-supported', 'gender:exact'],
    ]);
  });
});

test('conditional interactions check their criteria too', () => {
  const i: Interaction = { kind: 'delete', level: 'type', resourceType: 'Patient', conditional: true, params: [{ name: 'nickname', value: 'x' }] };
  expect(() => validateSearch(i)).toThrow(FhirError);
});

describe('history parameters', () => {
  const history = (params: SearchParam[]): Interaction => ({ kind: 'history-type', level: 'type', resourceType: 'Patient', conditional: false, params });
  test('_count, _offset, _since and _at pass', () => {
    expect(
      validateSearch(
        history([
          { name: '_count', value: '10' },
          { name: '_offset', value: '10' },
          { name: '_since', value: '2020-01-01T00:00:00Z' },
          { name: '_at', value: 'ge2020-01' },
        ]),
      ),
    ).toEqual({
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

/** Every name a plain object inherits: none may read as a known parameter, modifier or type. */
const INHERITED = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype'])];

describe('names Object.prototype has are names like any other', () => {
  // Each was a 500 (a TypeError in the modifier check) or accepted as a known parameter.
  const placements = (name: string): [string, SearchParam][] => [
    ['a parameter', { name, value: 'x' }],
    ['a parameter with :missing', { name, modifier: 'missing', value: 'true' }],
    ['a parameter with :not', { name, modifier: 'not', value: 'x' }],
    ['a modifier', { name: 'code', modifier: name, value: 'x' }],
    ['a reference modifier', { name: 'subject', modifier: name, value: '1' }],
    ['a _sort key', { name: '_sort', value: name }],
    ['a descending _sort key', { name: '_sort', value: `-${name}` }],
    ['an _include parameter', { name: '_include', value: `Observation:${name}` }],
    ['an _include source', { name: '_include', value: `${name}:subject` }],
    ['an _include target', { name: '_include', value: `Observation:subject:${name}` }],
    ['a _revinclude parameter', { name: '_revinclude', value: `Provenance:${name}` }],
    ['a chain link', { name: 'subject', chain: name, value: 'x' }],
    ['a chain link after a type modifier', { name: 'subject', modifier: 'Patient', chain: name, value: 'x' }],
    ['a _has type', { name: '_has', modifier: `${name}:subject:code`, value: 'x' }],
    ['a _has reference', { name: '_has', modifier: `Observation:${name}:code`, value: 'x' }],
    ['a _has parameter', { name: '_has', modifier: `Observation:subject:${name}`, value: 'x' }],
    ['a _type', { name: '_type', value: name }],
    ['a result parameter modifier', { name: '_summary', modifier: name, value: 'count' }],
  ];

  test.each(INHERITED)('%s', (name) => {
    for (const [where, p] of placements(name)) {
      let e: unknown;
      try {
        validateSearch(search(p.name === '_has' ? 'Patient' : 'Observation', [p]));
      } catch (err) {
        e = err;
      }
      expect({ where, refused: e instanceof FhirError ? e.status : e }).toEqual({ where, refused: 400 });
    }
  });

  test('a system search accepts none of them either', () => {
    for (const name of INHERITED) expect(refusal(search(undefined, [{ name, value: 'x' }])).status).toBe(400);
  });
});

describe('an unknown parameter inside _include, _revinclude, a chain or _has', () => {
  test.each([
    ['Observation', { name: '_include', value: 'Observation:foo' }, '_include'],
    ['Observation', { name: '_include', modifier: 'iterate', value: 'Observation:foo' }, '_include:iterate'],
    ['Patient', { name: '_revinclude', value: 'Observation:foo' }, '_revinclude'],
    ['Observation', { name: 'subject', modifier: 'Patient', chain: 'foo', value: 'x' }, 'subject:Patient.foo'],
    ['Patient', { name: '_has', modifier: 'Observation:foo:code', value: 'x' }, '_has:Observation:foo:code'],
    ['Patient', { name: '_has', modifier: 'Observation:subject:foo', value: 'x' }, '_has:Observation:subject:foo'],
  ] as [string, SearchParam, string][])('%s %j: unknown (400), dropped when lenient', (type, p, expression) => {
    expectRefused(type, p, 'not-supported', expression);
    const i = search(type, [p, { name: '_id', value: 'a' }]);
    expect(validateSearch(i, true).droppedParams).toEqual([expression]);
    expect(i.params).toEqual([{ name: '_id', value: 'a' }]);
  });

  test('a known parameter that is not a reference stays invalid, lenient or not', () => {
    const e = refusal(search('Observation', [{ name: '_include', value: 'Observation:code' }]), true);
    expect(e.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([['invalid', '_include']]);
    const has = refusal(search('Patient', [{ name: '_has', modifier: 'Observation:code:status', value: 'final' }]), true);
    expect(has.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([['invalid', '_has:Observation:code:status']]);
  });

  test('lenient handling drops every _include when one names an unknown parameter: the forwarded query loses them all alike', () => {
    const i = search('Observation', [
      { name: '_include', value: 'Observation:subject' },
      { name: '_include', value: 'Observation:foo' },
    ]);
    expect(validateSearch(i, true).droppedParams).toEqual(['_include']);
    expect(i.params).toEqual([]);
  });
});

describe('lenient handling drops parameters of searches only', () => {
  const conditional = (kind: 'create' | 'update' | 'patch' | 'delete'): Interaction => ({
    kind,
    level: 'type',
    resourceType: 'Observation',
    conditional: true,
    params: [{ name: 'general-practitioner', value: '1' }],
  });

  test.each(['create', 'update', 'patch', 'delete'] as const)('conditional %s: an unknown criterion is refused even when lenient', (kind) => {
    const i = conditional(kind);
    const e = refusal(i, true);
    expect(e.issues.map((x) => [x.code, x.diagnostics])).toEqual([['not-supported', "unknown search parameter 'general-practitioner' for Observation"]]);
    expect(i.params).toEqual([{ name: 'general-practitioner', value: '1' }]);
  });

  test('parameters of a _search form body are checked strictly: the body is forwarded as sent', () => {
    const i: Interaction = {
      ...search('Patient', [
        { name: 'nickname', value: 'a' },
        { name: 'colour', value: 'b' },
      ]),
      formParams: 1,
    };
    const e = refusal(i, true);
    expect(e.issues.map((x) => [x.code, x.expression?.[0]])).toEqual([['not-supported', 'colour']]);
    const urlOnly: Interaction = {
      ...search('Patient', [
        { name: 'nickname', value: 'a' },
        { name: 'name', value: 'b' },
      ]),
      formParams: 1,
    };
    expect(validateSearch(urlOnly, true).droppedParams).toEqual(['nickname']);
    expect(urlOnly.params).toEqual([{ name: 'name', value: 'b' }]);
    expect(urlOnly.formParams).toBe(1);
  });

  test('a name dropped from the URL stays in the interaction where the form body has it: the policy decides on what is forwarded', () => {
    const i: Interaction = {
      ...search('Encounter', [
        { name: '_include', value: 'Encounter:foo' },
        { name: '_include', value: 'Encounter:practitioner' },
      ]),
      formParams: 1,
    };
    expect(validateSearch(i, true).droppedParams).toEqual(['_include']);
    expect([i.params, i.formParams]).toEqual([[{ name: '_include', value: 'Encounter:practitioner' }], 1]);
  });

  test('every entry of a batch or transaction is checked strictly, and the first bad one is named', () => {
    const bundle: Interaction = {
      kind: 'transaction',
      level: 'system',
      conditional: false,
      params: [],
      entries: [search('Patient', [{ name: 'name', value: 'x' }]), { ...conditional('delete'), params: [{ name: 'nickname', value: 'x' }] }],
    };
    let e: unknown;
    try {
      validateSearch(bundle, true);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(FhirError);
    const f = e as FhirError;
    expect([f.status, f.issues.map((x) => [x.expression?.[0], x.diagnostics])]).toEqual([
      400,
      [['Bundle.entry[1].request.url', "Bundle.entry[1].request.url: unknown search parameter 'nickname' for Observation"]],
    ]);
  });
});

describe('_type in a compartment search', () => {
  const inPatient = (value: string): Interaction => ({ ...search(undefined, [{ name: '_type', value }]), compartment: { resourceType: 'Patient', id: '1' } });

  test('may name member types only', () => {
    expect(validateSearch(inPatient('Observation,Condition'))).toEqual({ warnings: [], droppedParams: [] });
    const e = refusal(inPatient('Observation,Medication'));
    expect(e.issues.map((x) => [x.code, x.diagnostics])).toEqual([['invalid', '_type: Medication is not in the Patient compartment']]);
  });
});
