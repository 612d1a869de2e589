// Codings and coded elements without a terminology server: shipped code systems (codes and
// displays), the syntax and check digits of external ones, and how sure each verdict is.

import { FORMATS_BY_SYSTEM } from '../../src/fhir/validate/code-formats';
import { FhirValidator } from '../../src/fhir/validate/validator';

const validator = new FhirValidator();

function issues(r: unknown): string[] {
  return validator.validateResource(r).map((i) => `${i.severity} ${i.code} @ ${i.expression?.[0]}`);
}

const obs = (extra: Record<string, unknown>): unknown => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...extra });
const category = (code: string, display?: string): Record<string, unknown> => ({
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code, ...(display ? { display } : {}) }] }],
});

describe('shipped code systems', () => {
  test('a known code with its display, or a differently spaced and cased one, is fine', () => {
    expect(issues(obs(category('vital-signs', 'Vital Signs')) as object)).toEqual([]);
    expect(issues(obs(category('vital-signs', ' vital  signs')) as object)).toEqual([]);
  });

  test('another display is a warning', () => {
    expect(issues(obs(category('vital-signs', 'Vitals')) as object)).toEqual(['warning code-invalid @ Observation.category[0].coding[0].display']);
  });

  test('an unknown code: a warning under a preferred binding, an error under an extensible one', () => {
    expect(issues(obs(category('vital-sign')) as object)).toEqual(['warning code-invalid @ Observation.category[0].coding[0]']);
    const married = (code: string): unknown => ({ resourceType: 'Patient', maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code }] } });
    expect(issues(married('M'))).toEqual([]);
    expect(issues(married('X'))).toEqual(['error code-invalid @ Patient.maritalStatus.coding[0]']);
  });

  test('a Coding that names a version is not judged against the shipped one', () => {
    const c = { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', version: '9.9', code: 'new-category' }] }] };
    expect(issues(obs(c))).toEqual([]);
  });

  test("a Coding's system is an absolute URI", () => {
    expect(issues(obs({ code: { coding: [{ system: 'loinc', code: '29463-7' }] } }))).toEqual(['error value @ Observation.code.coding[0].system']);
  });
});

describe('external code systems', () => {
  const loinc = FORMATS_BY_SYSTEM.get('http://loinc.org')!;
  const sct = FORMATS_BY_SYSTEM.get('http://snomed.info/sct')!;

  test.each(['29463-7', '8867-4', '2339-0', '718-7', '55284-4'])('LOINC %s has its check digit', (code) => {
    expect(loinc.syntax(code)).toBeNull();
    expect(loinc.checkDigit!(code)).toBeNull();
  });

  test('LOINC syntax and check digits', () => {
    expect(loinc.syntax('29463')).not.toBeNull();
    expect(loinc.syntax('LP12345-6')).toBeNull();
    expect(loinc.checkDigit!('29463-6')).toContain('expected 7');
  });

  test.each(['38341003', '44054006', '195967001', '900000000000003001', '731000124108', '128045006:{363698007=56459004}'])('SNOMED CT %s is well formed', (code) => {
    expect(sct.syntax(code)).toBeNull();
    expect(sct.checkDigit!(code)).toBeNull();
  });

  test('SNOMED CT syntax, partitions and check digits', () => {
    expect(sct.syntax('cashew')).not.toBeNull();
    expect(sct.syntax('01234567')).not.toBeNull();
    expect(sct.syntax('1234567')).toContain('partition');
    expect(sct.checkDigit!('38341004')).toContain('check digit');
  });

  test('a wrong check digit: an error under an extensible binding, a warning under an example one', () => {
    const loincCode = (code: string): unknown => ({ coding: [{ system: 'http://loinc.org', code }] });
    // Observation.code is bound by example, Observation.interpretation extensibly.
    expect(issues(obs({ code: loincCode('29463-6') }))).toEqual(['warning code-invalid @ Observation.code.coding[0].code']);
    expect(issues(obs({ interpretation: [loincCode('29463-6')] }))).toEqual(['error code-invalid @ Observation.interpretation[0].coding[0].code']);
  });

  test('languages, MIME types and currencies in code elements', () => {
    expect(issues({ resourceType: 'Patient', language: 'en-US' })).toEqual([]);
    expect(issues({ resourceType: 'Patient', language: 'en_US' })).toEqual(['error code-invalid @ Patient.language']);
    expect(issues({ resourceType: 'Patient', photo: [{ contentType: 'image/jpeg; q=1' }] })).toEqual([]);
    expect(issues({ resourceType: 'Patient', photo: [{ contentType: 'jpeg' }] })).toEqual(['error code-invalid @ Patient.photo[0].contentType']);
    expect(issues({ resourceType: 'Invoice', status: 'draft', totalNet: { value: 1, currency: 'eur' } })).toEqual(['error code-invalid @ Invoice.totalNet.currency']);
  });

  test('CapabilityStatement.format also takes the short names its definition lists', () => {
    const cs = { resourceType: 'CapabilityStatement', status: 'active', date: '2020-01-01', kind: 'instance', fhirVersion: '4.0.1', implementation: { description: 'x' }, rest: [{ mode: 'server' }] };
    expect(issues({ ...cs, format: ['json', 'application/fhir+json'] })).toEqual([]);
    expect(issues({ ...cs, format: ['yaml'] })).toEqual(['error code-invalid @ CapabilityStatement.format[0]']);
  });

  test('languages in Codings', () => {
    const p = (code: string): unknown => ({ resourceType: 'Patient', communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code }] } }] });
    expect(issues(p('nl'))).toEqual([]);
    expect(issues(p('dutch language'))).toEqual(['error code-invalid @ Patient.communication[0].language.coding[0].code']);
  });
});
