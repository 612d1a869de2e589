// Custom profiles: the example shipped in profiles/fhir/ (loaded by the default validator)
// and a FHIR package (.tgz) built here, each constraint kind raising its own issue.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultProfileDir, FhirValidator } from '../../src/fhir/validate/validator';

const EXAMPLE = 'http://fhirguard.example/fhir/StructureDefinition/fhirguard-example-patient';
const validator = new FhirValidator({ profileDirs: [defaultProfileDir()] });

const good = {
  resourceType: 'Patient',
  meta: { profile: [EXAMPLE] },
  active: true,
  identifier: [{ system: 'urn:x', value: '1', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
  name: [{ family: 'Doe' }],
  gender: 'female',
  birthDate: '1990-05-01',
  deceasedBoolean: false,
  maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
  telecom: [{ system: 'email', value: 'a@x.org' }],
};

function issuesOf(resource: unknown, profiles?: string[]) {
  return validator.validateResource(resource, profiles ? { profiles } : {}).map((i) => [i.severity, i.code, i.expression?.[0]]);
}

test('the shipped example profile is loaded from profiles/fhir', () => {
  expect(validator.profiles.urls()).toContain(EXAMPLE);
});

test('a conforming Patient passes', () => {
  expect(issuesOf(good)).toEqual([]);
});

test.each([
  ['min: identifier', { identifier: undefined }, 'required', 'Patient.identifier'],
  ['min inside an element: identifier.system', { identifier: [{ value: '1' }] }, 'required', 'Patient.identifier[0].system'],
  ['max: at most two names', { name: [{ family: 'a' }, { family: 'b' }, { family: 'c' }] }, 'structure', 'Patient.name'],
  ['max 0: no photo', { photo: [{ title: 'p' }] }, 'structure', 'Patient.photo'],
  ['fixed: active', { active: false }, 'value', 'Patient.active'],
  ['pattern: identifier.type', { identifier: [{ system: 'urn:x', type: { text: 'other' } }] }, 'value', 'Patient.identifier[0].type'],
  ['choice narrowed to boolean', { deceasedBoolean: undefined, deceasedDateTime: '2020-01-01' }, 'structure', 'Patient.deceased.ofType(dateTime)'],
  ['required binding added by the profile', { maritalStatus: { coding: [{ system: 'http://x.org', code: 'wed' }] } }, 'code-invalid', 'Patient.maritalStatus'],
  ['maxLength', { name: [{ family: 'x'.repeat(51) }] }, 'too-long', 'Patient.name[0].family'],
  [
    "the profile's invariant fgp-1",
    {
      telecom: [
        { system: 'email', value: 'a' },
        { system: 'email', value: 'b' },
      ],
    },
    'invariant',
    'Patient',
  ],
])('%s', (_name, change, code, expression) => {
  const resource = { ...good, ...change } as Record<string, unknown>;
  for (const k of Object.keys(resource)) if (resource[k] === undefined) delete resource[k];
  expect(issuesOf(resource)).toEqual([['error', code, expression]]);
});

test('a profile named by the caller applies without meta.profile', () => {
  const { meta: _meta, ...plain } = good;
  expect(issuesOf({ ...plain, active: false }, [EXAMPLE])).toEqual([['error', 'value', 'Patient.active']]);
});

test('a profile for another type is an error', () => {
  expect(issuesOf({ resourceType: 'Observation', status: 'final', code: { text: 'x' } }, [EXAMPLE])).toEqual([['error', 'invalid', 'Observation']]);
});

test('an unknown profile is a warning', () => {
  expect(issuesOf({ resourceType: 'Patient', meta: { profile: ['http://x.org/StructureDefinition/nope'] } })).toEqual([['warning', 'not-supported', 'Patient.meta.profile']]);
});

describe('a FHIR package (.tgz)', () => {
  let dir: string;
  let v: FhirValidator;
  const PROFILE = 'http://pkg.example/StructureDefinition/lab-observation';

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhirguard-pkg-'));
    const pkg = path.join(dir, 'package');
    fs.mkdirSync(pkg);
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'pkg.example', version: '1.0.0' }));
    fs.writeFileSync(
      path.join(pkg, 'ValueSet-lab-status.json'),
      JSON.stringify({
        resourceType: 'ValueSet',
        url: 'http://pkg.example/ValueSet/lab-status',
        status: 'active',
        compose: { include: [{ system: 'http://hl7.org/fhir/observation-status', concept: [{ code: 'final' }, { code: 'amended' }] }] },
      }),
    );
    fs.writeFileSync(
      path.join(pkg, 'StructureDefinition-lab-observation.json'),
      JSON.stringify({
        resourceType: 'StructureDefinition',
        url: PROFILE,
        name: 'LabObservation',
        status: 'active',
        kind: 'resource',
        abstract: false,
        type: 'Observation',
        baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Observation',
        derivation: 'constraint',
        differential: {
          element: [
            { id: 'Observation.status', path: 'Observation.status', binding: { strength: 'required', valueSet: 'http://pkg.example/ValueSet/lab-status' } },
            { id: 'Observation.subject', path: 'Observation.subject', min: 1 },
            {
              id: 'Observation.category',
              path: 'Observation.category',
              patternCodeableConcept: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] },
            },
          ],
        },
      }),
    );
    execFileSync('tar', ['czf', path.join(dir, 'pkg.example-1.0.0.tgz'), '-C', dir, 'package']);
    fs.rmSync(pkg, { recursive: true });
    v = new FhirValidator({ profileDirs: [dir] });
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const lab = {
    resourceType: 'Observation',
    meta: { profile: [PROFILE] },
    status: 'final',
    code: { text: 'x' },
    subject: { reference: 'Patient/1' },
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
  };

  test('its profile is loaded and a conforming resource passes', () => {
    expect(v.profiles.urls()).toEqual([PROFILE]);
    expect(v.validateResource(lab)).toEqual([]);
  });

  test('its constraints apply, bindings included, to a value set of the package', () => {
    const issues = v.validateResource({ ...lab, status: 'preliminary', subject: undefined, category: [{ text: 'lab' }] });
    expect(issues.map((i) => [i.code, i.expression?.[0]])).toEqual([
      ['code-invalid', 'Observation.status'],
      ['required', 'Observation.subject'],
      ['value', 'Observation.category[0]'],
    ]);
  });
});
