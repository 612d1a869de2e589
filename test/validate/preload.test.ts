// The proxy's start: the process-wide validator is built, the operator's profiles loaded and
// every type compiled before the first request.

import { defaultValidator, preloadValidator } from '../../src/fhir/validate';

test('preloadValidator loads profiles/fhir and compiles every type', () => {
  const r = preloadValidator();
  expect(r.profiles).toContain('http://fhirguard.example/fhir/StructureDefinition/fhirguard-example-patient');
  expect(r.notes).toEqual([]);
  expect(r.ms).toBeGreaterThan(0);
  const v = defaultValidator();
  // Every resource type is compiled: its invariants are ready.
  const patient = v.registry.get('Patient')!;
  expect(patient.invariants.map((i) => i.key).sort()).toEqual(['dom-2', 'dom-4', 'dom-5']);
  expect(v.validateResource({ resourceType: 'Patient', contact: [{}] }).map((i) => [i.code, i.expression?.[0]])).toEqual([['invariant', 'Patient.contact[0]']]);
});
