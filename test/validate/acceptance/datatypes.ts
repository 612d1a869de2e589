// Data type rules (datatypes.html and the invariants of the R4 datatypes).

import { breaking, Rule } from './rule';

const hello = Buffer.from('hello world').toString('base64');
// SHA-1 of "hello world", base64.
const helloSha1 = '2aae6c35c94fcfb415dbe95f408b9ce91ee846ed';

const attachment = {
  resourceType: 'DocumentReference',
  status: 'current',
  content: [{ attachment: { contentType: 'text/plain', data: hello, size: 11, hash: Buffer.from(helloSha1, 'hex').toString('base64') } }],
};

const period = {
  resourceType: 'Encounter',
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  period: { start: '2020-05', end: '2020-05-15' },
};

const weight = {
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'body weight' },
  valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
};

const plan = {
  resourceType: 'CarePlan',
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p1', type: 'Patient' },
  instantiatesCanonical: ['http://example.org/fhir/PlanDefinition/diabetes|1.0'],
};

function order(): Record<string, unknown> {
  return { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationCodeableConcept: { text: 'metformin 500 mg' }, subject: { reference: 'Patient/p1' } };
}

export const datatypeRules: Rule[] = [
  {
    id: 'att-size',
    rule: "an Attachment's size is the number of bytes of its data, when both are present",
    source: 'Attachment.size',
    valid: attachment,
    invalid: breaking(attachment, (d) => (d.content[0].attachment.size = 12)),
    at: 'DocumentReference.content[0].attachment',
  },
  {
    id: 'att-hash',
    rule: "an Attachment's hash is the base64 SHA-1 of its data, when both are present",
    source: 'Attachment.hash',
    valid: attachment,
    invalid: breaking(attachment, (d) => (d.content[0].attachment.hash = Buffer.from('0'.repeat(40), 'hex').toString('base64'))),
    at: 'DocumentReference.content[0].attachment',
  },
  {
    id: 'att-1',
    rule: 'an Attachment with data has a contentType',
    source: 'Attachment att-1',
    valid: attachment,
    invalid: breaking(attachment, (d) => delete d.content[0].attachment.contentType),
    at: 'DocumentReference.content[0].attachment',
  },
  {
    id: 'per-1',
    rule: "a Period's start is not after its end",
    source: 'Period per-1',
    valid: period,
    invalid: breaking(period, (e) => (e.period = { start: '2020-05-16T10:00:00Z', end: '2020-05-15T10:00:00Z' })),
    at: 'Encounter.period',
  },
  {
    id: 'per-1-partial',
    rule: "a Period's start is not after its end, compared at the precision both have",
    source: 'Period per-1, datatypes.html#dateTime',
    valid: period,
    invalid: breaking(period, (e) => (e.period = { start: '2020-06', end: '2020-05-15' })),
    at: 'Encounter.period',
  },
  {
    id: 'ref-type',
    rule: 'Reference.type agrees with the type the reference names',
    source: 'Reference.type',
    valid: plan,
    invalid: breaking(plan, (c) => (c.subject.type = 'Group')),
    at: 'CarePlan.subject',
  },
  {
    id: 'canonical-format',
    rule: 'a canonical is a URI (no whitespace), optionally with |version',
    source: 'datatypes.html#canonical',
    valid: plan,
    invalid: breaking(plan, (c) => (c.instantiatesCanonical = ['http://example.org/fhir/PlanDefinition/diabetes 1.0'])),
    at: 'CarePlan.instantiatesCanonical[0]',
  },
  {
    id: 'uuid-format',
    rule: 'a uuid is urn:uuid: with a lower-case RFC 4122 UUID',
    source: 'datatypes.html#uuid',
    valid: { resourceType: 'Patient', extension: [{ url: 'http://example.org/fhir/StructureDefinition/key', valueUuid: 'urn:uuid:3b0c6a5e-8f2a-4c1e-9d6b-1f0e2a3b4c5d' }] },
    invalid: { resourceType: 'Patient', extension: [{ url: 'http://example.org/fhir/StructureDefinition/key', valueUuid: 'urn:uuid:3b0c6a5e8f2a4c1e9d6b1f0e2a3b4c5d' }] },
    at: 'Patient.extension[0].value',
  },
  {
    id: 'identifier-uri',
    rule: 'an Identifier whose system is urn:ietf:rfc:3986 has a URI as its value',
    source: 'identifier-registry.html (urn:ietf:rfc:3986)',
    valid: { resourceType: 'Patient', identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:3b0c6a5e-8f2a-4c1e-9d6b-1f0e2a3b4c5d' }] },
    invalid: { resourceType: 'Patient', identifier: [{ system: 'urn:ietf:rfc:3986', value: 'MRN 12345' }] },
    at: 'Patient.identifier[0].value',
  },
  {
    id: 'qty-3',
    rule: 'a Quantity with a code has a system',
    source: 'Quantity qty-3',
    valid: weight,
    invalid: breaking(weight, (o) => delete o.valueQuantity.system),
    at: 'Observation.value',
  },
  {
    id: 'qty-comparator',
    rule: "a Quantity's comparator is one of <, <=, >=, >",
    source: 'Quantity.comparator (required binding)',
    valid: weight,
    invalid: breaking(weight, (o) => (o.valueQuantity.comparator = '=')),
    at: 'Observation.value',
  },
  {
    id: 'qty-ucum',
    rule: 'a UCUM code in a Quantity is UCUM syntax',
    source: 'datatypes.html#Quantity, ucum.org',
    valid: weight,
    invalid: breaking(weight, (o) => (o.valueQuantity.code = 'kg//m2')),
    at: 'Observation.value',
  },
  {
    id: 'qty-ucum-unit',
    rule: 'a UCUM code names units UCUM defines',
    source: 'ucum.org',
    valid: weight,
    invalid: breaking(weight, (o) => (o.valueQuantity.code = 'kilograms')),
    at: 'Observation.value',
  },
  {
    id: 'sqty-1',
    rule: 'a SimpleQuantity has no comparator',
    source: 'SimpleQuantity sqty-1',
    valid: { ...order(), dispenseRequest: { quantity: { value: 30, unit: 'tablet' } } },
    invalid: { ...order(), dispenseRequest: { quantity: { value: 30, unit: 'tablet', comparator: '<' } } },
    at: 'MedicationRequest.dispenseRequest.quantity',
  },
  {
    id: 'age-1',
    rule: 'an Age is in UCUM with a code',
    source: 'Age age-1',
    valid: { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, onsetAge: { value: 40, unit: 'years', system: 'http://unitsofmeasure.org', code: 'a' } },
    invalid: { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, onsetAge: { value: 40, unit: 'years', system: 'http://example.org/units', code: 'years' } },
    at: 'Condition.onset',
  },
  {
    id: 'cpt-2',
    rule: 'a ContactPoint with a value has a system',
    source: 'ContactPoint cpt-2',
    valid: { resourceType: 'Patient', telecom: [{ system: 'phone', value: '+31 15 123 4567' }] },
    invalid: { resourceType: 'Patient', telecom: [{ value: '+31 15 123 4567' }] },
    at: 'Patient.telecom[0]',
  },
  {
    id: 'rng-2',
    rule: "a Range's low is not above its high",
    source: 'Range rng-2',
    valid: {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueRange: { low: { value: 1, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' }, high: { value: 2, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } },
    },
    invalid: {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'x' },
      valueRange: { low: { value: 3, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' }, high: { value: 2, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } },
    },
    at: 'Observation.value',
  },
  {
    id: 'date-valid',
    rule: 'a date is a real calendar date',
    source: 'datatypes.html#date',
    valid: { resourceType: 'Patient', birthDate: '2020-02-29' },
    invalid: { resourceType: 'Patient', birthDate: '2019-02-29' },
    at: 'Patient.birthDate',
  },
  {
    id: 'instant-zone',
    rule: 'an instant has a time zone',
    source: 'datatypes.html#instant',
    valid: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, issued: '2020-01-01T10:00:00Z' },
    invalid: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, issued: '2020-01-01T10:00:00' },
    at: 'Observation.issued',
  },
  {
    id: 'txt-1',
    rule: 'narrative XHTML holds only the permitted elements and attributes',
    source: 'Narrative txt-1',
    valid: { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann</p></div>' } },
    invalid: { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">Ann</p></div>' } },
    at: 'Patient.text.div',
  },
  {
    id: 'txt-2',
    rule: 'a narrative has some non-whitespace content',
    source: 'Narrative txt-2',
    valid: { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann</p></div>' } },
    invalid: { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p> </p></div>' } },
    at: 'Patient.text.div',
  },
];
