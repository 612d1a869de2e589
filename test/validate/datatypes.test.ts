// Datatype rules beyond the invariants: UCUM codes, Attachment size and hash, identifiers in
// the urn:ietf:rfc:3986 system; and the generated UCUM table.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkUcum } from '../../src/fhir/validate/ucum';
import { FhirValidator } from '../../src/fhir/validate/validator';

const ROOT = path.resolve(__dirname, '..', '..');
const validator = new FhirValidator();

function issues(r: unknown): string[] {
  return validator.validateResource(r).map((i) => `${i.severity} ${i.code} @ ${i.expression?.[0]}`);
}

describe('UCUM', () => {
  test.each(['kg', 'kg/m2', 'kg.m-2', '10*3/uL', '10^6', 'mm[Hg]', '[in_i]', '{score}', '{#}/[HPF]', 'mL/min/{1.73_m2}', '/min', '%', "'", 'ug/(24.h)', 'dam', 'Cel', 'mmol/L', '1'])(
    '%s is a UCUM expression',
    (code) => {
      expect(checkUcum(code)).toEqual({});
    },
  );

  test.each(['', 'kg//m2', 'kg/', '(kg', 'kg)', '{x', 'm{a b}', 'kg m', 'mg]', 'µg', '.kg'])('%j is not UCUM syntax', (code) => {
    expect(checkUcum(code).error).toBeDefined();
  });

  test.each([
    ['mcg', 'mcg'],
    ['ml/hr', 'hr'],
    ['(score)', 'score'],
    ['kilograms', 'kilograms'],
    ['k[in_i]', 'k[in_i]'],
  ])('%s parses but names a unit UCUM does not define (%s)', (code, unknown) => {
    expect(checkUcum(code)).toEqual({ unknown });
  });

  test('src/fhir/validate/ucum-units.ts is what scripts/gen-ucum.js generates', () => {
    const generated = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'gen-ucum.js'), '--print'], { encoding: 'utf8' });
    expect(generated === fs.readFileSync(path.join(ROOT, 'src', 'fhir', 'validate', 'ucum-units.ts'), 'utf8')).toBe(true);
  });

  test('in a Quantity: bad syntax is an error, an unknown unit a warning, other systems are not judged', () => {
    const obs = (q: Record<string, unknown>): unknown => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 1, ...q } });
    expect(issues(obs({ system: 'http://unitsofmeasure.org', code: 'mg//dL' }))).toEqual(['error value @ Observation.value.ofType(Quantity).code']);
    expect(issues(obs({ system: 'http://unitsofmeasure.org', code: 'mcg' }))).toEqual(['warning value @ Observation.value.ofType(Quantity).code']);
    expect(issues(obs({ system: 'http://snomed.info/sct', code: '258684004' }))).toEqual([]);
  });
});

describe('Attachment', () => {
  const data = Buffer.from('hello world').toString('base64');
  const sha1 = 'Kq5sNclPz7QV2+lfQIuc6R7oRu0=';
  const doc = (a: Record<string, unknown>): unknown => ({ resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data, ...a } }] });

  test('size and hash that agree with the data', () => {
    expect(issues(doc({ size: 11, hash: sha1 }))).toEqual([]);
  });

  test('a size or hash that does not', () => {
    expect(issues(doc({ size: 10, hash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' }))).toEqual([
      'error value @ DocumentReference.content[0].attachment.size',
      'error value @ DocumentReference.content[0].attachment.hash',
    ]);
  });

  test('a hash that is not a base64 SHA-1 cannot be compared: a warning', () => {
    expect(issues(doc({ hash: '2aae6c35c94fcfb415dbe95f408b9ce91ee846ed' }))).toEqual(['warning value @ DocumentReference.content[0].attachment.hash']);
  });

  test('without data there is nothing to compare', () => {
    expect(issues({ resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { url: 'https://x.org/a.pdf', size: 5, hash: sha1 } }] })).toEqual([]);
  });
});

test('an identifier in urn:ietf:rfc:3986 is a URI (or a bare OID)', () => {
  const p = (value: string): unknown => ({ resourceType: 'Patient', identifier: [{ system: 'urn:ietf:rfc:3986', value }] });
  expect(issues(p('urn:oid:2.16.840.1.113883.19.5'))).toEqual([]);
  expect(issues(p('2.16.840.1.113883.19.5'))).toEqual([]);
  expect(issues(p('https://acme.nl/patients/1'))).toEqual([]);
  expect(issues(p('12345'))).toEqual(['error value @ Patient.identifier[0].value']);
});
