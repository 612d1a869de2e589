// Bundle rules by type: references a document or message must carry, POST/PUT urls of
// batch and transaction entries, fullUrls naming their resource's type.

import { FhirValidator } from '../../src/fhir/validate/validator';

const validator = new FhirValidator();
const base = 'https://fhir.example.org/';

function errors(r: unknown): string[] {
  return validator
    .validateResource(r)
    .filter((i) => i.severity === 'error')
    .map((i) => `${i.code} @ ${i.expression?.[0]}`);
}

function document(composition: Record<string, unknown>, others: Record<string, unknown>[], fullUrl = base + 'Composition/c1'): unknown {
  return {
    resourceType: 'Bundle',
    identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0' },
    type: 'document',
    timestamp: '2020-01-01T10:00:00Z',
    entry: [
      {
        fullUrl,
        resource: { resourceType: 'Composition', id: 'c1', status: 'final', type: { text: 'note' }, date: '2020-01-01', author: [{ reference: 'Practitioner/d1' }], title: 'Note', ...composition },
      },
      ...others.map((r) => ({ fullUrl: `${base}${String(r.resourceType)}/${String(r.id)}`, resource: r })),
    ],
  };
}

describe('documents', () => {
  const dr = { resourceType: 'Practitioner', id: 'd1' };

  test("relative references resolve against the Composition's RESTful base", () => {
    expect(errors(document({ subject: { reference: base + 'Patient/p1' } }, [dr, { resourceType: 'Patient', id: 'p1' }]))).toEqual([]);
  });

  test('a reference the document does not carry, in a nested section, is refused where it is', () => {
    const composition = {
      section: [
        {
          title: 'a',
          text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">a</div>' },
          section: [{ title: 'b', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">b</div>' }, entry: [{ reference: 'Observation/o9' }] }],
        },
      ],
    };
    expect(errors(document(composition, [dr]))).toEqual(['not-found @ Bundle.entry[0].resource.section[0].section[0].entry[0].reference']);
  });

  test('relatesTo points at other documents, outside this one', () => {
    expect(errors(document({ relatesTo: [{ code: 'replaces', targetReference: { reference: 'Composition/old' } }] }, [dr]))).toEqual([]);
  });

  test('a Composition with a urn:uuid fullUrl resolves relative references by type and id', () => {
    expect(errors(document({}, [dr], 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d'))).toEqual([]);
    expect(errors(document({}, [], 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d'))).toEqual(['not-found @ Bundle.entry[0].resource.author[0].reference']);
  });

  test('a version-specific reference resolves to the entry of that resource', () => {
    expect(errors(document({ author: [{ reference: base + 'Practitioner/d1/_history/3' }] }, [dr]))).toEqual([]);
  });
});

describe('batch and transaction requests', () => {
  const tx = (entry: Record<string, unknown>): unknown => ({ resourceType: 'Bundle', type: 'transaction', entry: [entry] });
  const patient = { resourceType: 'Patient', id: 'p1' };

  test('conditional urls name no instance', () => {
    expect(errors(tx({ fullUrl: 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d', resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: 'Patient?identifier=x|1' } }))).toEqual([]);
    expect(errors(tx({ fullUrl: 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d', resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: 'Observation?code=x' } }))).toEqual([
      'invalid @ Bundle.entry[0].request.url',
    ]);
  });

  test('a PUT needs the id its url names', () => {
    expect(errors(tx({ fullUrl: base + 'Patient/p1', resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: 'Patient/p1' } }))).toEqual(['invalid @ Bundle.entry[0].request.url']);
    expect(errors(tx({ fullUrl: base + 'Patient/p1', resource: patient, request: { method: 'PUT', url: 'Patient/p1' } }))).toEqual([]);
  });

  test('DELETE and GET carry no resource to compare', () => {
    expect(errors({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'DELETE', url: 'Patient/p1' } }, { request: { method: 'GET', url: 'Patient?name=x' } }] })).toEqual([]);
  });
});

test("a RESTful fullUrl naming another id than the resource's is a warning, another type an error", () => {
  const col = (fullUrl: string): unknown => ({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl, resource: { resourceType: 'Patient', id: 'p1' } }] });
  const issues = (r: unknown): string[] => validator.validateResource(r).map((i) => `${i.severity} @ ${i.expression?.[0]}`);
  expect(issues(col(base + 'Patient/p2'))).toEqual(['warning @ Bundle.entry[0].fullUrl']);
  expect(issues(col(base + 'Group/p1'))).toEqual(['error @ Bundle.entry[0].fullUrl']);
});
