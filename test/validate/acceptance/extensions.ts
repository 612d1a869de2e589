// Extensions against their core R4 definitions (extensibility.html, the
// StructureDefinitions of the R4 extension registry).

import { breaking, Rule } from './rule';

const SD = 'http://hl7.org/fhir/StructureDefinition/';

const birthTime = {
  resourceType: 'Patient',
  birthDate: '2020-02-29',
  _birthDate: { extension: [{ url: SD + 'patient-birthTime', valueDateTime: '2020-02-29T10:15:00+01:00' }] },
};

const citizenship = {
  resourceType: 'Patient',
  extension: [
    {
      url: SD + 'patient-citizenship',
      extension: [
        { url: 'code', valueCodeableConcept: { coding: [{ system: 'urn:iso:std:iso:3166', code: 'NL' }] } },
        { url: 'period', valuePeriod: { start: '2001-01-01' } },
      ],
    },
  ],
};

const dataAbsent = {
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'body weight' },
  _status: { extension: [{ url: SD + 'data-absent-reason', valueCode: 'unknown' }] },
  dataAbsentReason: { text: 'scale broken' },
};

const nameUse = {
  resourceType: 'Patient',
  name: [{ family: 'Doe', extension: [{ url: SD + 'iso21090-EN-use', valueCode: 'I' }] }],
};

const doNotPerform = {
  resourceType: 'NutritionOrder',
  status: 'active',
  intent: 'order',
  patient: { reference: 'Patient/p1' },
  dateTime: '2020-01-01',
  oralDiet: { type: [{ text: 'no sugar' }] },
  modifierExtension: [{ url: SD + 'request-doNotPerform', valueBoolean: true }],
};

export const extensionRules: Rule[] = [
  {
    id: 'ext-context-element',
    rule: 'an extension is used only in the contexts its definition names (patient-birthTime: Patient.birthDate)',
    source: 'extensibility.html#context; StructureDefinition.context',
    valid: birthTime,
    invalid: { resourceType: 'Patient', birthDate: '2020-02-29', extension: [{ url: SD + 'patient-birthTime', valueDateTime: '2020-02-29T10:15:00+01:00' }] },
    at: 'Patient.extension[0]',
  },
  {
    id: 'ext-context-type',
    rule: 'an extension defined on a datatype (iso21090-EN-use: HumanName) is not used on another one',
    source: 'extensibility.html#context',
    valid: nameUse,
    invalid: { resourceType: 'Patient', address: [{ city: 'Delft', extension: [{ url: SD + 'iso21090-EN-use', valueCode: 'I' }] }] },
    at: 'Patient.address[0].extension[0]',
  },
  {
    id: 'ext-context-resource',
    rule: 'an extension defined on one resource (patient-mothersMaidenName: Patient) is not used on another',
    source: 'extensibility.html#context',
    valid: { resourceType: 'Patient', extension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] },
    invalid: { resourceType: 'Practitioner', extension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] },
    at: 'Practitioner.extension[0]',
  },
  {
    id: 'ext-value-type',
    rule: "an extension's value has one of the types its definition allows (patient-birthTime: dateTime)",
    source: 'Extension.value[x] of the definition',
    valid: birthTime,
    invalid: breaking(birthTime, (p) => {
      p._birthDate.extension[0] = { url: SD + 'patient-birthTime', valueString: '10:15' };
    }),
    at: 'Patient.birthDate.extension[0]',
  },
  {
    id: 'ext-value-required',
    rule: 'a simple extension has a value, not nested extensions (patient-mothersMaidenName)',
    source: 'Extension.value[x] min 1, Extension.extension max 0',
    valid: { resourceType: 'Patient', extension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] },
    invalid: { resourceType: 'Patient', extension: [{ url: SD + 'patient-mothersMaidenName', extension: [{ url: 'family', valueString: 'Smith' }] }] },
    at: 'Patient.extension[0]',
  },
  {
    id: 'ext-complex-no-value',
    rule: 'a complex extension (patient-citizenship) has nested extensions and no value',
    source: 'Extension.value[x] max 0',
    valid: citizenship,
    invalid: { resourceType: 'Patient', extension: [{ url: SD + 'patient-citizenship', valueCodeableConcept: { text: 'Dutch' } }] },
    at: 'Patient.extension[0]',
  },
  {
    id: 'ext-part-type',
    rule: "a nested extension's value has the type its slice allows (citizenship.code: CodeableConcept)",
    source: 'Extension.extension:code.value[x]',
    valid: citizenship,
    invalid: breaking(citizenship, (p) => {
      p.extension[0].extension[0] = { url: 'code', valueString: 'NL' };
    }),
    at: 'Patient.extension[0].extension[0]',
  },
  {
    id: 'ext-part-cardinality',
    rule: 'a nested extension appears no more often than its slice allows (citizenship.period: 0..1)',
    source: 'Extension.extension:period max 1',
    valid: citizenship,
    invalid: breaking(citizenship, (p) => {
      p.extension[0].extension.push({ url: 'period', valuePeriod: { start: '2010-01-01' } });
    }),
    at: 'Patient.extension[0]',
  },
  {
    id: 'ext-part-required',
    rule: 'a nested extension with min 1 is present (geolocation: latitude 1..1, longitude 1..1)',
    source: 'Extension.extension:latitude min 1',
    valid: {
      resourceType: 'Location',
      address: {
        city: 'Delft',
        extension: [
          {
            url: SD + 'geolocation',
            extension: [
              { url: 'latitude', valueDecimal: 52.01 },
              { url: 'longitude', valueDecimal: 4.36 },
            ],
          },
        ],
      },
    },
    invalid: {
      resourceType: 'Location',
      address: { city: 'Delft', extension: [{ url: SD + 'geolocation', extension: [{ url: 'latitude', valueDecimal: 52.01 }] }] },
    },
    at: 'Location.address.extension[0]',
  },
  {
    id: 'ext-cardinality',
    rule: "an extension appears no more often than its definition's root allows (patient-birthTime: 0..1)",
    source: 'Extension max of the definition',
    valid: birthTime,
    invalid: breaking(birthTime, (p) => {
      p._birthDate.extension.push({ url: SD + 'patient-birthTime', valueDateTime: '2020-02-29T10:16:00+01:00' });
    }),
    at: 'Patient.birthDate.extension',
  },
  {
    id: 'ext-value-binding',
    rule: "an extension's coded value is in the value set its required binding names (data-absent-reason)",
    source: 'Extension.value[x] binding (required)',
    valid: dataAbsent,
    invalid: breaking(dataAbsent, (o) => {
      o._status.extension[0].valueCode = 'forgot';
    }),
    at: 'Observation.status.extension[0]',
  },
  {
    id: 'ext-value-binding-datatype',
    rule: 'iso21090-EN-use takes a code of v3 EntityNameUseR2',
    source: 'Extension.value[x] binding (required)',
    valid: nameUse,
    invalid: breaking(nameUse, (p) => {
      p.name[0].extension[0].valueCode = 'nickname';
    }),
    at: 'Patient.name[0].extension[0]',
  },
  {
    id: 'ext-modifier-placement',
    rule: 'a modifier extension (request-doNotPerform) is carried in modifierExtension, never in extension',
    source: 'extensibility.html#modifierExtension',
    valid: doNotPerform,
    invalid: breaking(doNotPerform, (n) => {
      n.extension = n.modifierExtension;
      delete n.modifierExtension;
    }),
    at: 'NutritionOrder.extension[0]',
  },
  {
    id: 'ext-not-modifier',
    rule: 'an extension that is not a modifier is not carried in modifierExtension',
    source: 'extensibility.html#modifierExtension',
    valid: { resourceType: 'Patient', extension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] },
    invalid: { resourceType: 'Patient', modifierExtension: [{ url: SD + 'patient-mothersMaidenName', valueString: 'Smith' }] },
    at: 'Patient.modifierExtension[0]',
  },
  {
    id: 'ext-unknown-modifier',
    rule: 'a modifier extension the receiver does not know makes the resource unsafe to process',
    source: 'extensibility.html#modifierExtension ("SHALL ... refuse")',
    valid: { resourceType: 'Patient', extension: [{ url: 'https://fhir.acme-hospital.nl/StructureDefinition/vip', valueBoolean: true }] },
    invalid: { resourceType: 'Patient', modifierExtension: [{ url: 'https://fhir.acme-hospital.nl/StructureDefinition/vip', valueBoolean: true }] },
    at: 'Patient.modifierExtension[0]',
  },
  {
    id: 'ext-url-absolute',
    rule: "a top-level extension's url is an absolute URL (only nested extensions use relative names)",
    source: 'extensibility.html#url',
    valid: { resourceType: 'Patient', extension: [{ url: 'https://fhir.acme-hospital.nl/StructureDefinition/vip', valueBoolean: true }] },
    invalid: { resourceType: 'Patient', extension: [{ url: 'vip', valueBoolean: true }] },
    at: 'Patient.extension[0]',
  },
  {
    id: 'ext-1',
    rule: 'ext-1: an extension has either nested extensions or a value, not both',
    source: 'Extension ext-1',
    valid: citizenship,
    invalid: breaking(citizenship, (p) => {
      p.extension[0].valueString = 'NL';
    }),
    at: 'Patient.extension[0]',
  },
];
