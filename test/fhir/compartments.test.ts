// The compartment tables against the official R4 CompartmentDefinitions of the spec's
// examples (the test corpus, not what the table was generated from), and the lookups with
// names a request can carry.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPARTMENT_OWNERS, compartmentParams, compartmentTypes, inCompartment, isCompartmentOwner } from '../../src/fhir/compartments';
import { R4_COMPARTMENTS } from '../../src/fhir/r4-compartments';
import { CORPUS } from '../validate/corpus';

const EXAMPLES = join(CORPUS, 'r4-examples', 'json');

interface Definition {
  code: string;
  resource: { code: string; param?: string[] }[];
}

test('the table lists what the five R4 CompartmentDefinitions list, member by member', () => {
  const official = ['device', 'encounter', 'patient', 'practitioner', 'relatedperson'].map((id) => JSON.parse(readFileSync(join(EXAMPLES, `compartmentdefinition-${id}.json`), 'utf8')) as Definition);
  const expected = official
    .map(
      (d) =>
        [
          d.code,
          d.resource
            .filter((r) => (r.param ?? []).length > 0)
            .map((r) => [r.code, r.param])
            .sort(),
        ] as const,
    )
    .sort((a, b) => a[0].localeCompare(b[0]));
  const table = R4_COMPARTMENTS.map(([owner, members]) => [owner, [...members].sort()] as const);
  expect(JSON.parse(JSON.stringify(table))).toEqual(JSON.parse(JSON.stringify(expected)));
  expect(COMPARTMENT_OWNERS).toEqual(['Device', 'Encounter', 'Patient', 'Practitioner', 'RelatedPerson']);
});

test('membership follows the definitions', () => {
  expect(inCompartment('Patient', 'Observation')).toBe(true);
  expect(inCompartment('Patient', 'Medication')).toBe(false);
  expect(inCompartment('Device', 'Device')).toBe(false);
  expect(compartmentParams('Encounter', 'Encounter')).toEqual(['{def}']);
  expect(compartmentTypes('Encounter')).toContain('Observation');
  expect(compartmentTypes('Organization')).toEqual([]);
});

test('names a plain object inherits own no compartment and are members of none', () => {
  for (const name of new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype'])) {
    expect([name, isCompartmentOwner(name), inCompartment('Patient', name), compartmentParams('Patient', name), compartmentTypes(name)]).toEqual([name, false, false, undefined, []]);
  }
});
