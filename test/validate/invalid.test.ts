// fhirguard's own invalid resources, per check category (test/fixtures/validate/<category>.json):
// each case names the issues it must raise, by code and FHIRPath location, and each comes
// with the valid resource it was made from not raising them (so the test fails if a check
// reports everything, or the wrong place).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Issue } from '../../src/fhir/outcome';
import { FhirValidator } from '../../src/fhir/validate/validator';

interface Case {
  name: string;
  resource: Record<string, unknown>;
  issues: { code: string; expression: string }[];
}

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'validate');
const CATEGORIES = ['structure', 'id', 'empty', 'primitives', 'bindings', 'invariants', 'bundles', 'references', 'narrative'];
const validator = new FhirValidator();

function errors(resource: unknown): Issue[] {
  return validator.validateResource(resource).filter((i) => i.severity === 'error');
}

function describeIssues(issues: Issue[]): string[] {
  return issues.map((i) => `${i.code} @ ${i.expression?.[0]}: ${i.diagnostics}`);
}

describe.each(CATEGORIES)('%s', (category) => {
  const cases = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${category}.json`), 'utf8')) as Case[];

  test('has at least 5 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(5);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const found = errors(c.resource);
    for (const want of c.issues) {
      const hit = found.find((i) => i.code === want.code && i.expression?.[0] === want.expression);
      if (!hit) throw new Error(`expected ${want.code} at ${want.expression}; got:\n${describeIssues(found).join('\n')}`);
      expect(hit.diagnostics.length).toBeGreaterThan(0);
    }
  });
});

test('a string over 1 MB is too long', () => {
  const found = errors({ resourceType: 'Patient', name: [{ text: 'x'.repeat(1024 * 1024 + 1) }] });
  expect(found.map((i) => [i.code, i.expression?.[0]])).toEqual([['too-long', 'Patient.name[0].text']]);
});

test('a string of exactly 1 MB is not', () => {
  expect(errors({ resourceType: 'Patient', name: [{ text: 'x'.repeat(1024 * 1024) }] })).toEqual([]);
});

test('the resources the invalid cases were made from are valid', () => {
  const valid: unknown[] = [
    { resourceType: 'Patient', id: 'a-b.1', gender: 'male', birthDate: '2020-02-29', name: [{ family: 'Doe', given: ['Ann'] }], active: true },
    {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueQuantity: { value: 1, code: 'mg', system: 'http://unitsofmeasure.org' },
      effectiveDateTime: '2020-01-01T10:00:00+01:00',
      issued: '2020-01-01T10:00:00.123Z',
    },
    { resourceType: 'Observation', status: 'final', code: { text: 'x' }, contained: [{ resourceType: 'Patient', id: 'p' }], subject: { reference: '#p' } },
    { resourceType: 'Patient', name: [{ given: ['Ann', null], _given: [null, { extension: [{ url: 'http://x.org/e', valueString: 'y' }] }] }] },
    { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>Doe</b> &amp; <img src="#photo"/></p></div>' } },
    { resourceType: 'Binary', contentType: 'text/plain', data: 'aGVs bG8=' },
    {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:2b8bd0aa-3c6b-4c3a-9a57-2c6e0b4f6a11', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: 'urn:uuid:7f9c0a4e-1b2d-4e3f-8a9b-0c1d2e3f4a5b',
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:2b8bd0aa-3c6b-4c3a-9a57-2c6e0b4f6a11' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    },
  ];
  for (const r of valid) expect(describeIssues(errors(r))).toEqual([]);
});

test('a document nested too deeply for the stack is a verdict, not a crash', () => {
  let ext: Record<string, unknown> = { url: 'http://x.org/e', valueString: 'a' };
  for (let i = 0; i < 20000; i++) ext = { url: 'http://x.org/e', extension: [ext] };
  const issues = validator.validateResource({ resourceType: 'Patient', extension: [ext] });
  expect(issues[issues.length - 1]).toMatchObject({ severity: 'fatal', code: 'too-costly' });
});

describe("'#' in a uri is a uri; in a canonical or a reference it names a contained resource", () => {
  test('meta.source is `#<request id>` as servers write it: valid; a contained resource it names counts as referenced (dom-3)', () => {
    expect(describeIssues(errors({ resourceType: 'Patient', meta: { source: '#b0d9eb11-0d2a-85c6' }, name: [{ family: 'Doe' }] }))).toEqual([]);
    const q = { resourceType: 'Questionnaire', status: 'draft', contained: [{ resourceType: 'ValueSet', id: 'vs', status: 'draft' }], item: [{ linkId: '1', type: 'choice', answerValueSet: '#vs' }] };
    expect(describeIssues(errors(q))).toEqual([]);
  });

  test('a canonical or a reference naming no contained resource is an error', () => {
    const q = { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'choice', answerValueSet: '#nowhere' }] };
    expect(describeIssues(errors(q))).toEqual(["invariant @ Questionnaire.item[0].answerValueSet: the local canonical '#nowhere' does not name a contained resource"]);
    expect(describeIssues(errors({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: '#p' } })).some((d) => d.includes('ref-1'))).toBe(true);
  });
});
