// Extensions against their definitions: the R4 registry (in the generated model) and
// extension definitions loaded from operators' packages.

import type { Issue } from '../../src/fhir/outcome';
import { FhirValidator } from '../../src/fhir/validate/validator';

const SD = 'http://hl7.org/fhir/StructureDefinition/';
const validator = new FhirValidator();

function issues(r: unknown, v = validator): string[] {
  return v.validateResource(r).map((i: Issue) => `${i.severity} ${i.code} @ ${i.expression?.[0]}`);
}

test('a core extension in its context, with its value type, is accepted without a word', () => {
  expect(issues({ resourceType: 'Patient', birthDate: '2020-01-01', _birthDate: { extension: [{ url: SD + 'patient-birthTime', valueDateTime: '2020-01-01T10:00:00Z' }] } })).toEqual([]);
});

test('Element and type contexts: data-absent-reason anywhere, iso21090-EN-use on any HumanName', () => {
  expect(
    issues({
      resourceType: 'Practitioner',
      name: [{ extension: [{ url: SD + 'iso21090-EN-use', valueCode: 'C' }], family: 'X' }],
      _gender: { extension: [{ url: SD + 'data-absent-reason', valueCode: 'asked-declined' }] },
    }),
  ).toEqual([]);
});

test('a versioned url is the same extension', () => {
  expect(issues({ resourceType: 'Patient', extension: [{ url: SD + 'patient-mothersMaidenName|4.0.1', valueInteger: 1 }] })).toEqual(['error structure @ Patient.extension[0]']);
});

test('an extension in a contained resource is judged by the contained resource', () => {
  const obs = {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'x' },
    contained: [{ resourceType: 'Patient', id: 'p', extension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] }],
    subject: { reference: '#p' },
  };
  expect(issues(obs)).toEqual([]);
});

test('the value of an extension may be a specialisation of an allowed type', () => {
  // iso21090-PQ-translation takes a Quantity and is used on Quantity: an Age is one.
  const ucum = { system: 'http://unitsofmeasure.org' };
  const translation = { url: SD + 'iso21090-PQ-translation', valueAge: { value: 480, unit: 'mo', code: 'mo', ...ucum } };
  const r = { resourceType: 'Condition', subject: { reference: 'Patient/p' }, onsetAge: { value: 40, unit: 'a', code: 'a', ...ucum, extension: [translation] } };
  expect(issues(r)).toEqual([]);
});

test('unknown extensions are warnings; unknown modifier extensions errors, but on documentation domains', () => {
  expect(issues({ resourceType: 'Patient', extension: [{ url: 'https://acme.nl/fhir/vip', valueBoolean: true }] })).toEqual(['warning not-supported @ Patient.extension[0]']);
  expect(issues({ resourceType: 'Patient', modifierExtension: [{ url: 'https://acme.nl/fhir/vip', valueBoolean: true }] })).toEqual(['error not-supported @ Patient.modifierExtension[0]']);
  expect(issues({ resourceType: 'Patient', modifierExtension: [{ url: 'http://example.org/fhir/vip', valueBoolean: true }] })).toEqual(['warning not-supported @ Patient.modifierExtension[0]']);
});

test('the nested extensions of an unknown extension use names; of a known one, its parts', () => {
  expect(issues({ resourceType: 'Patient', extension: [{ url: 'https://acme.nl/fhir/x', extension: [{ url: 'a', valueString: 'b' }] }] })).toEqual(['warning not-supported @ Patient.extension[0]']);
  const nested = {
    resourceType: 'Patient',
    extension: [
      {
        url: SD + 'patient-citizenship',
        extension: [
          { url: 'code', valueCodeableConcept: { text: 'NL' } },
          { url: 'other', valueString: 'x' },
        ],
      },
    ],
  };
  // patient-citizenship slices its nested extensions openly: another name is allowed.
  expect(issues(nested)).toEqual([]);
});

test('a known extension nested in an unknown one is still checked', () => {
  const r = { resourceType: 'Patient', extension: [{ url: 'https://acme.nl/fhir/x', extension: [{ url: SD + 'data-absent-reason', valueCode: 'nope' }] }] };
  expect(issues(r)).toEqual(['error code-invalid @ Patient.extension[0].extension[0]', 'warning not-supported @ Patient.extension[0]']);
});

test('an extension on a datatype inside an extension value is judged by that datatype', () => {
  const r = {
    resourceType: 'Patient',
    extension: [
      {
        url: SD + 'patient-birthPlace',
        valueAddress: {
          city: 'Delft',
          extension: [
            {
              url: SD + 'geolocation',
              extension: [
                { url: 'latitude', valueDecimal: 1 },
                { url: 'longitude', valueDecimal: 2 },
              ],
            },
          ],
        },
      },
    ],
  };
  expect(issues(r)).toEqual([]);
});

describe('extension definitions from a package', () => {
  const v = new FhirValidator();
  v.profiles.load([
    {
      resourceType: 'StructureDefinition',
      url: 'https://acme.nl/fhir/StructureDefinition/ward',
      name: 'Ward',
      type: 'Extension',
      kind: 'complex-type',
      derivation: 'constraint',
      context: [{ type: 'element', expression: 'Encounter' }],
      snapshot: {
        element: [
          { id: 'Extension', path: 'Extension', min: 0, max: '1' },
          { id: 'Extension.extension', path: 'Extension.extension', min: 0, max: '0' },
          { id: 'Extension.url', path: 'Extension.url', min: 1, max: '1', fixedUri: 'https://acme.nl/fhir/StructureDefinition/ward' },
          { id: 'Extension.value[x]', path: 'Extension.value[x]', min: 1, max: '1', type: [{ code: 'string' }] },
        ],
      },
    },
  ]);
  const enc = { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' } };

  test('are used like the registry', () => {
    expect(issues({ ...enc, extension: [{ url: 'https://acme.nl/fhir/StructureDefinition/ward', valueString: '3B' }] }, v)).toEqual([]);
    expect(issues({ ...enc, extension: [{ url: 'https://acme.nl/fhir/StructureDefinition/ward', valueInteger: 3 }] }, v)).toEqual(['error structure @ Encounter.extension[0]']);
    expect(issues({ resourceType: 'Patient', extension: [{ url: 'https://acme.nl/fhir/StructureDefinition/ward', valueString: '3B' }] }, v)).toEqual(['error structure @ Patient.extension[0]']);
  });
});
