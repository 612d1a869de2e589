// Terminology without a server (terminologies.html, the R4 value sets and code systems):
// required bindings, codes and displays of code systems the specification ships, and the
// syntax of codes from external systems.

import { breaking, Rule } from './rule';

const vitals = {
  resourceType: 'Observation',
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
  subject: { reference: 'Patient/p1' },
  valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
};

const allergy = {
  resourceType: 'AllergyIntolerance',
  clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
  verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }] },
  code: { coding: [{ system: 'http://snomed.info/sct', code: '227493005', display: 'Cashew nuts' }] },
  patient: { reference: 'Patient/p1' },
};

const patient = {
  resourceType: 'Patient',
  language: 'nl-NL',
  identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:oid:2.16.840.1.113883.2.4.6.3', value: '123' }],
  gender: 'female',
  maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
  photo: [{ contentType: 'image/png', url: 'https://example.org/photo.png' }],
};

export const terminologyRules: Rule[] = [
  {
    id: 'binding-code',
    rule: 'a code bound with strength required is in the value set (Patient.gender)',
    source: 'terminologies.html#required',
    valid: patient,
    invalid: breaking(patient, (p) => (p.gender = 'F')),
    at: 'Patient.gender',
  },
  {
    id: 'binding-codeableconcept',
    rule: 'a CodeableConcept bound with strength required has a coding from the value set',
    source: 'terminologies.html#required',
    valid: allergy,
    invalid: breaking(allergy, (a) => (a.clinicalStatus.coding[0].code = 'current')),
    at: 'AllergyIntolerance.clinicalStatus',
  },
  {
    id: 'binding-system',
    rule: 'a required binding is met by the code in its own system, not the same code in another',
    source: 'terminologies.html#required',
    valid: allergy,
    invalid: breaking(allergy, (a) => (a.clinicalStatus.coding[0].system = 'http://terminology.hl7.org/CodeSystem/condition-clinical')),
    at: 'AllergyIntolerance.clinicalStatus',
  },
  {
    id: 'code-in-system',
    rule: 'a code of a code system the specification defines completely exists in it (extensible binding)',
    source: 'terminologies.html#extensible, CodeSystem observation-category',
    valid: vitals,
    invalid: breaking(vitals, (o) => (o.category[0].coding[0].code = 'vital-sign')),
    at: 'Observation.category[0].coding[0]',
  },
  {
    id: 'code-in-system-unbound',
    rule: 'a code of a complete HL7 code system exists in it wherever it is used (v3 MaritalStatus)',
    source: 'terminologies.html, CodeSystem v3-MaritalStatus',
    valid: patient,
    invalid: breaking(patient, (p) => (p.maritalStatus.coding[0].code = 'Married')),
    at: 'Patient.maritalStatus.coding[0]',
  },
  {
    id: 'code-in-v2-table',
    rule: 'a code of an HL7 v2 table exists in it (v2-0203 identifier types)',
    source: 'CodeSystem v2-0203',
    valid: patient,
    invalid: breaking(patient, (p) => (p.identifier[0].type.coding[0].code = 'MRX')),
    at: 'Patient.identifier[0].type.coding[0]',
  },
  {
    id: 'display',
    rule: "a Coding's display is one the code system gives the code, where the code system is shipped",
    source: 'terminologies.html#4.1.1 (display), Coding.display',
    valid: vitals,
    invalid: breaking(vitals, (o) => (o.category[0].coding[0].display = 'Laboratory')),
    at: 'Observation.category[0].coding[0].display',
  },
  {
    id: 'loinc-format',
    rule: 'a LOINC code is digits, a hyphen and its check digit',
    source: 'loinc.html (code format)',
    valid: vitals,
    invalid: breaking(vitals, (o) => (o.code.coding[0].code = '29463-6')),
    at: 'Observation.code.coding[0]',
  },
  {
    id: 'snomed-format',
    rule: 'a SNOMED CT concept id is 6 to 18 digits with a valid Verhoeff check digit',
    source: 'snomedct.html (SCTID format)',
    valid: allergy,
    invalid: breaking(allergy, (a) => (a.code.coding[0].code = '227493006')),
    at: 'AllergyIntolerance.code.coding[0]',
  },
  {
    id: 'loinc-syntax',
    rule: 'a LOINC code has the form digits-checkdigit (or a LOINC part, answer or group id)',
    source: 'loinc.html (code format)',
    valid: vitals,
    invalid: breaking(vitals, (o) => (o.code.coding[0].code = '29463')),
    at: 'Observation.code.coding[0]',
  },
  {
    id: 'snomed-syntax',
    rule: 'a SNOMED CT code is an SCTID or an expression',
    source: 'snomedct.html (SCTID format)',
    valid: allergy,
    invalid: breaking(allergy, (a) => (a.code.coding[0].code = 'cashew')),
    at: 'AllergyIntolerance.code.coding[0]',
  },
  {
    id: 'code-in-system-required',
    rule: 'a code of a shipped code system under a required binding exists in it (and so in the value set)',
    source: 'terminologies.html#required',
    valid: allergy,
    invalid: breaking(allergy, (a) => (a.verificationStatus.coding[0].code = 'confirmd')),
    at: 'AllergyIntolerance.verificationStatus',
  },
  {
    id: 'mime-format',
    rule: 'an Attachment contentType is a MIME type (type/subtype)',
    source: 'Attachment.contentType (required binding to BCP-13)',
    valid: patient,
    invalid: breaking(patient, (p) => (p.photo[0].contentType = 'png')),
    at: 'Patient.photo[0].contentType',
  },
  {
    id: 'language-format',
    rule: 'a language is a BCP-47 tag',
    source: 'Resource.language (BCP-47)',
    valid: patient,
    invalid: breaking(patient, (p) => (p.language = 'nl_NL')),
    at: 'Patient.language',
  },
  {
    id: 'coding-system-absolute',
    rule: "a Coding's system is an absolute URI",
    source: 'datatypes.html#Coding (Coding.system)',
    valid: vitals,
    invalid: breaking(vitals, (o) => (o.code.coding[0].system = 'loinc')),
    at: 'Observation.code.coding[0].system',
  },
  {
    id: 'currency',
    rule: 'a Money currency is an ISO 4217 code',
    source: 'Money.currency (required binding)',
    valid: { resourceType: 'Invoice', status: 'issued', totalNet: { value: 10, currency: 'EUR' } },
    invalid: { resourceType: 'Invoice', status: 'issued', totalNet: { value: 10, currency: 'EURO' } },
    at: 'Invoice.totalNet.currency',
  },
];
