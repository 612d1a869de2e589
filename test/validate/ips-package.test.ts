// The HL7 International Patient Summary package (hl7.fhir.uv.ips 2.0.0) as operators drop it
// in profiles/fhir/: its profiles slice Bundle entries by profile, Composition sections by
// code and section entries by the profile of the resource they reference. Every example the
// package publishes must be accepted; breaking what its slices require must not be.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTarBuffer } from '../../src/archive/tar-read';
import { FhirValidator } from '../../src/fhir/validate/validator';
import { fhirPackage, IPS } from './fhir-packages';

const tgz = fhirPackage(IPS);
const validator = new FhirValidator({ profileDirs: [path.dirname(tgz)] });
const limits = { maxEntryBytes: 64 * 2 ** 20, maxTotalBytes: 512 * 2 ** 20, maxEntries: 100_000 };
const examples = new Map<string, Record<string, unknown>>();
for (const e of readTarBuffer(fs.readFileSync(tgz), (h) => /^package\/example\/[^/]+\.json$/.test(h.path), limits)) {
  if (e.data) examples.set(path.basename(e.path), JSON.parse(e.data.toString('utf8').replace(/^\uFEFF/, '')));
}

function errors(r: unknown): string[] {
  return validator
    .validateResource(r)
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);
}

function copy(name: string): Record<string, any> {
  return JSON.parse(JSON.stringify(examples.get(name)));
}

test('the package loads: its profiles, no problems', () => {
  expect(validator.profiles.urls()).toContain('http://hl7.org/fhir/uv/ips/StructureDefinition/Bundle-uv-ips');
  expect(validator.loadProfiles(path.dirname(tgz))).toEqual([]);
});

test('it publishes the examples this test reads', () => {
  expect(examples.size).toBe(44);
});

test.each([...examples.keys()])('%s is accepted', (name) => {
  expect(errors(examples.get(name))).toEqual([]);
});

const SECTIONS = 'http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips';

test('a Composition without its required medication section is refused, at the sliced element', () => {
  const c = copy('Composition-composition-minimal.json');
  expect(c.meta.profile).toContain(SECTIONS);
  c.section = c.section.filter((s: any) => s.code.coding[0].code !== '10160-0');
  const found = errors(c);
  expect(found).toContainEqual(expect.stringMatching(/^Composition\.section: slice 'sectionMedications' of Composition\.section needs at least 1/));
  // The profile also asks for three sections at least.
  expect(found).toHaveLength(2);
});

test("a section's own constraints apply to the items of its slice", () => {
  const c = copy('Composition-composition-minimal.json');
  const allergies = c.section.find((s: any) => s.code.coding[0].code === '48765-2');
  delete allergies.title;
  const found = errors(c);
  expect(found).toContainEqual(expect.stringMatching(/^Composition\.section\[\d\]\.title: Composition\.section:sectionAllergies\.title needs at least 1/));
  expect(found.every((e) => e.includes('.title'))).toBe(true);
});

test('an IPS Bundle without a Patient entry is refused', () => {
  const b = copy('Bundle-bundle-minimal.json');
  const fullUrl = b.entry.find((e: any) => e.resource.resourceType === 'Patient').fullUrl;
  b.entry = b.entry.filter((e: any) => e.resource.resourceType !== 'Patient');
  const found = errors(b);
  expect(found).toContainEqual(expect.stringMatching(/^Bundle\.entry: slice 'patient' of Bundle\.entry needs at least 1/));
  expect(found.every((e) => e.includes(fullUrl) || e.includes("slice 'patient'"))).toBe(true);
});
