// Slicing in profiles (profiling.html#slicing): discriminators by value, pattern, exists,
// type and profile; open, closed and ordered slicing; cardinality and constraints per slice;
// profiles that constrain extensions. The profiles are built here, snapshot only, holding
// just the elements that matter.

import { breaking, Resource, Rule } from './rule';

const BASE = 'https://fhir.acme-hospital.nl/StructureDefinition/';
const HL7 = 'http://hl7.org/fhir/StructureDefinition/';

type El = Record<string, unknown> & { id: string };

/** A profile of `type` whose snapshot is the root and `elements` (path and base filled in from the id). */
function profile(name: string, type: string, elements: El[]): Resource {
  const snapshot = [{ id: type, path: type, min: 0, max: '*' }, ...elements].map((e) => ({
    path: e.id.replace(/:[^.]+/g, ''),
    base: { path: e.id.replace(/:[^.]+/g, ''), min: 0, max: '*' },
    ...e,
  }));
  return {
    resourceType: 'StructureDefinition',
    url: BASE + name,
    name,
    type,
    kind: 'resource',
    derivation: 'constraint',
    baseDefinition: HL7 + type,
    snapshot: { element: snapshot },
  };
}

const VS = 'http://terminology.hl7.org/CodeSystem/observation-category';
const cat = (code: string): unknown => ({ coding: [{ system: VS, code }] });

export const slicingProfiles: Resource[] = [
  // category sliced by pattern: exactly one vital-signs, at most one laboratory.
  profile('obs-category', 'Observation', [
    { id: 'Observation.category', slicing: { discriminator: [{ type: 'pattern', path: '$this' }], rules: 'open' } },
    { id: 'Observation.category:vs', sliceName: 'vs', min: 1, max: '1', patternCodeableConcept: cat('vital-signs') },
    { id: 'Observation.category:lab', sliceName: 'lab', min: 0, max: '1', patternCodeableConcept: cat('laboratory') },
  ]),
  // identifier sliced by the value of system, closed; the mrn slice needs a value.
  profile('pat-identifier', 'Patient', [
    { id: 'Patient.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'closed' } },
    { id: 'Patient.identifier:mrn', sliceName: 'mrn', min: 1, max: '1' },
    { id: 'Patient.identifier:mrn.system', min: 1, max: '1', base: { path: 'Identifier.system', min: 0, max: '1' }, fixedUri: 'urn:oid:2.16.840.1.113883.2.4.6.3' },
    { id: 'Patient.identifier:mrn.value', min: 1, max: '1', base: { path: 'Identifier.value', min: 0, max: '1' } },
    { id: 'Patient.identifier:bsn', sliceName: 'bsn', min: 0, max: '1' },
    { id: 'Patient.identifier:bsn.system', min: 1, max: '1', base: { path: 'Identifier.system', min: 0, max: '1' }, fixedUri: 'http://fhir.nl/fhir/NamingSystem/bsn' },
  ]),
  // name sliced by whether period exists, ordered: the current name (no period) first.
  profile('pat-names', 'Patient', [
    { id: 'Patient.name', slicing: { discriminator: [{ type: 'exists', path: 'period' }], rules: 'open', ordered: true } },
    { id: 'Patient.name:current', sliceName: 'current', min: 1, max: '1' },
    { id: 'Patient.name:current.period', min: 0, max: '0', base: { path: 'HumanName.period', min: 0, max: '1' } },
    { id: 'Patient.name:former', sliceName: 'former', min: 0, max: '*' },
    { id: 'Patient.name:former.period', min: 1, max: '1', base: { path: 'HumanName.period', min: 0, max: '1' } },
  ]),
  // value[x] sliced by type: a Quantity must be in mm[Hg].
  profile('obs-pressure', 'Observation', [
    { id: 'Observation.value[x]', slicing: { discriminator: [{ type: 'type', path: '$this' }], rules: 'open' } },
    { id: 'Observation.value[x]:valueQuantity', sliceName: 'valueQuantity', min: 0, max: '1', base: { path: 'Observation.value[x]', min: 0, max: '1' }, type: [{ code: 'Quantity' }] },
    { id: 'Observation.value[x]:valueQuantity.code', min: 1, max: '1', base: { path: 'Quantity.code', min: 0, max: '1' }, fixedCode: 'mm[Hg]' },
  ]),
  // extensions sliced by url: birthPlace required, at most one.
  profile('pat-birthplace', 'Patient', [
    { id: 'Patient.extension', slicing: { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' } },
    { id: 'Patient.extension:birthPlace', sliceName: 'birthPlace', min: 1, max: '1', type: [{ code: 'Extension', profile: [HL7 + 'patient-birthPlace'] }] },
  ]),
  // Bundle entries sliced by the profile of their resource: one Patient of pat-identifier.
  profile('bundle-patient', 'Bundle', [
    { id: 'Bundle.entry', slicing: { discriminator: [{ type: 'profile', path: 'resource' }], rules: 'open' } },
    { id: 'Bundle.entry:patient', sliceName: 'patient', min: 1, max: '1' },
    { id: 'Bundle.entry:patient.resource', min: 1, max: '1', base: { path: 'Bundle.entry.resource', min: 0, max: '1' }, type: [{ code: 'Patient', profile: [BASE + 'pat-identifier'] }] },
  ]),
  // Composition section entries sliced by the profile of what they reference.
  profile('doc-composition', 'Composition', [
    { id: 'Composition.section', min: 1, max: '1' },
    { id: 'Composition.section.entry', slicing: { discriminator: [{ type: 'profile', path: 'resolve()' }], rules: 'open' } },
    { id: 'Composition.section.entry:vitals', sliceName: 'vitals', min: 1, max: '*', type: [{ code: 'Reference', targetProfile: [BASE + 'obs-category'] }] },
  ]),
];

const meta = (name: string): unknown => ({ profile: [BASE + name] });
const obs = { resourceType: 'Observation', meta: meta('obs-category'), status: 'final', code: { text: 'pulse' }, category: [cat('vital-signs'), cat('laboratory')] };
const patient = {
  resourceType: 'Patient',
  meta: meta('pat-identifier'),
  identifier: [
    { system: 'urn:oid:2.16.840.1.113883.2.4.6.3', value: '12345' },
    { system: 'http://fhir.nl/fhir/NamingSystem/bsn', value: '999999990' },
  ],
};
const names = { resourceType: 'Patient', meta: meta('pat-names'), name: [{ family: 'Jansen' }, { family: 'de Vries', period: { end: '2010-06-01' } }] };
const pressure = {
  resourceType: 'Observation',
  meta: meta('obs-pressure'),
  status: 'final',
  code: { text: 'systolic' },
  valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
};
const birthPlace = { resourceType: 'Patient', meta: meta('pat-birthplace'), extension: [{ url: HL7 + 'patient-birthPlace', valueAddress: { city: 'Delft' } }] };
const { meta: _m, ...plainPatient } = patient;
const bundle = {
  resourceType: 'Bundle',
  meta: meta('bundle-patient'),
  type: 'collection',
  entry: [{ fullUrl: 'urn:uuid:3b0c6a5e-8f2a-4c1e-9d6b-1f0e2a3b4c5d', resource: plainPatient }],
};
const { meta: _o, ...plainObs } = obs;
const document = {
  resourceType: 'Bundle',
  type: 'collection',
  entry: [
    {
      fullUrl: 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d',
      resource: {
        resourceType: 'Composition',
        meta: meta('doc-composition'),
        status: 'final',
        type: { text: 'note' },
        date: '2020-01-01',
        author: [{ display: 'Dr. Who' }],
        title: 'Note',
        section: [
          { title: 'vitals', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">pulse</div>' }, entry: [{ reference: 'urn:uuid:9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b' }] },
        ],
      },
    },
    { fullUrl: 'urn:uuid:9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b', resource: plainObs },
  ],
};

export const slicingRules: Rule[] = [
  {
    id: 'slice-min',
    rule: 'a slice has at least its minimum number of items (pattern discriminator)',
    source: 'profiling.html#slicing, ElementDefinition.min of the slice',
    valid: obs,
    invalid: breaking(obs, (o) => (o.category = [cat('laboratory')])),
    at: 'Observation.category',
  },
  {
    id: 'slice-max',
    rule: 'a slice has at most its maximum number of items',
    source: 'ElementDefinition.max of the slice',
    valid: obs,
    invalid: breaking(obs, (o) => o.category.push(cat('vital-signs'))),
    at: 'Observation.category',
  },
  {
    id: 'slice-closed',
    rule: 'closed slicing admits no item outside its slices (value discriminator)',
    source: 'ElementDefinition.slicing.rules = closed',
    valid: patient,
    invalid: breaking(patient, (p) => p.identifier.push({ system: 'urn:x', value: '1' })),
    at: 'Patient.identifier[2]',
  },
  {
    id: 'slice-child',
    rule: "the items of a slice meet the slice's constraints on their children (mrn needs a value)",
    source: 'profiling.html#slicing',
    valid: patient,
    invalid: breaking(patient, (p) => delete p.identifier[0].value),
    at: 'Patient.identifier[0].value',
  },
  {
    id: 'slice-exists',
    rule: 'an exists discriminator sorts items by whether an element is present',
    source: 'ElementDefinition.slicing.discriminator.type = exists',
    valid: names,
    invalid: breaking(names, (p) => (p.name[0].period = { end: '2015-01-01' })),
    at: 'Patient.name',
  },
  {
    id: 'slice-ordered',
    rule: 'ordered slicing keeps items in the order of the slices',
    source: 'ElementDefinition.slicing.ordered',
    valid: names,
    invalid: breaking(names, (p) => p.name.reverse()),
    at: 'Patient.name[1]',
  },
  {
    id: 'slice-type',
    rule: "a type discriminator sorts a choice's value by its type, and the slice's constraints apply",
    source: 'ElementDefinition.slicing.discriminator.type = type',
    valid: pressure,
    invalid: breaking(pressure, (o) => (o.valueQuantity.code = 'kPa')),
    at: 'Observation.value.ofType(Quantity).code',
  },
  {
    id: 'slice-extension',
    rule: 'a profile that requires an extension (sliced by url) gets it',
    source: 'profiling.html#extensions',
    valid: birthPlace,
    invalid: breaking(birthPlace, (p) => (p.extension[0] = { url: HL7 + 'patient-mothersMaidenName', valueString: 'Smith' })),
    at: 'Patient.extension',
  },
  {
    id: 'slice-profile',
    rule: 'a profile discriminator sorts items by the profile their resource conforms to',
    source: 'ElementDefinition.slicing.discriminator.type = profile',
    valid: bundle,
    invalid: breaking(bundle, (b) => (b.entry[0].resource.identifier = [{ system: 'urn:oid:2.16.840.1.113883.2.4.6.3' }])),
    at: 'Bundle.entry',
  },
  {
    id: 'slice-resolve',
    rule: 'a resolve() discriminator follows references inside the Bundle to sort them',
    source: 'ElementDefinition.slicing.discriminator.path resolve()',
    valid: document,
    invalid: breaking(document, (b) => (b.entry[1].resource.category = [cat('laboratory')])),
    at: 'Bundle.entry[0].resource.section[0].entry',
  },
];
