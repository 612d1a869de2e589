// Bundles by type (bundle.html, documents.html, messaging.html, http.html#transaction) and
// the rules for contained resources (dom-2..dom-5, references.html#contained).

import { breaking, Rule } from './rule';

const P1 = 'urn:uuid:3b0c6a5e-8f2a-4c1e-9d6b-1f0e2a3b4c5d';
const C1 = 'urn:uuid:5d9a1c2b-7e3f-4a6b-8c0d-2e1f3a4b5c6d';

const document = {
  resourceType: 'Bundle',
  identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0' },
  type: 'document',
  timestamp: '2020-01-01T10:00:00Z',
  entry: [
    {
      fullUrl: C1,
      resource: {
        resourceType: 'Composition',
        status: 'final',
        type: { text: 'discharge summary' },
        subject: { reference: P1 },
        date: '2020-01-01',
        author: [{ reference: P1 }],
        title: 'Discharge',
      },
    },
    { fullUrl: P1, resource: { resourceType: 'Patient', name: [{ family: 'Doe' }] } },
  ],
};

const message = {
  resourceType: 'Bundle',
  type: 'message',
  timestamp: '2020-01-01T10:00:00Z',
  entry: [
    {
      fullUrl: C1,
      resource: {
        resourceType: 'MessageHeader',
        eventCoding: { system: 'http://example.org/events', code: 'admit' },
        source: { endpoint: 'https://his.example.org/fhir' },
        focus: [{ reference: P1 }],
      },
    },
    { fullUrl: P1, resource: { resourceType: 'Patient', name: [{ family: 'Doe' }] } },
  ],
};

const searchset = {
  resourceType: 'Bundle',
  type: 'searchset',
  total: 1,
  entry: [{ fullUrl: 'https://fhir.example.org/Patient/p1', resource: { resourceType: 'Patient', id: 'p1' }, search: { mode: 'match' } }],
};

const transaction = {
  resourceType: 'Bundle',
  type: 'transaction',
  entry: [
    { fullUrl: 'https://fhir.example.org/Patient/p1', resource: { resourceType: 'Patient', id: 'p1' }, request: { method: 'PUT', url: 'Patient/p1' } },
    { fullUrl: P1, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
  ],
};

const collection = {
  resourceType: 'Bundle',
  type: 'collection',
  entry: [{ fullUrl: 'https://fhir.example.org/Patient/p1', resource: { resourceType: 'Patient', id: 'p1' } }],
};

const withContained = {
  resourceType: 'Observation',
  status: 'final',
  code: { text: 'x' },
  contained: [{ resourceType: 'Patient', id: 'p' }],
  subject: { reference: '#p' },
};

export const bundleRules: Rule[] = [
  {
    id: 'bdl-11',
    rule: 'a document has a Composition as its first resource',
    source: 'Bundle bdl-11',
    valid: document,
    invalid: breaking(document, (b) => b.entry.reverse()),
    at: 'Bundle',
  },
  {
    id: 'bdl-9',
    rule: 'a document has an identifier with a system and a value',
    source: 'Bundle bdl-9',
    valid: document,
    invalid: breaking(document, (b) => delete b.identifier.system),
    at: 'Bundle',
  },
  {
    id: 'bdl-10',
    rule: 'a document has a timestamp',
    source: 'Bundle bdl-10',
    valid: document,
    invalid: breaking(document, (b) => delete b.timestamp),
    at: 'Bundle',
  },
  {
    id: 'document-references',
    rule: "every resource the Composition references is in the document (resolves to an entry's fullUrl)",
    source: 'documents.html#content',
    valid: document,
    invalid: breaking(document, (b) => {
      b.entry[0].resource.author = [{ reference: 'Practitioner/dr-who' }];
    }),
    at: 'Bundle.entry[0].resource.author[0]',
  },
  {
    id: 'bdl-12',
    rule: 'a message has a MessageHeader as its first resource',
    source: 'Bundle bdl-12',
    valid: message,
    invalid: breaking(message, (b) => b.entry.reverse()),
    at: 'Bundle',
  },
  {
    id: 'message-focus',
    rule: "the MessageHeader's focus resources are in the message",
    source: 'messaging.html#focus',
    valid: message,
    invalid: breaking(message, (b) => {
      b.entry[0].resource.focus = [{ reference: 'urn:uuid:9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b' }];
    }),
    at: 'Bundle.entry[0].resource.focus[0]',
  },
  {
    id: 'bdl-1',
    rule: 'total only in a searchset or history',
    source: 'Bundle bdl-1',
    valid: searchset,
    invalid: breaking(collection, (b) => (b.total = 1)),
    at: 'Bundle',
  },
  {
    id: 'bdl-2',
    rule: 'entry.search only in a searchset',
    source: 'Bundle bdl-2',
    valid: searchset,
    invalid: breaking(collection, (b) => (b.entry[0].search = { mode: 'match' })),
    at: 'Bundle',
  },
  {
    id: 'bdl-3',
    rule: 'entry.request in every entry of a batch, transaction or history, and nowhere else',
    source: 'Bundle bdl-3',
    valid: transaction,
    invalid: breaking(transaction, (b) => delete b.entry[1].request),
    at: 'Bundle.entry[1]',
  },
  {
    id: 'bdl-4',
    rule: 'entry.response in every entry of a batch-response, transaction-response or history, and nowhere else',
    source: 'Bundle bdl-4',
    valid: collection,
    invalid: breaking(collection, (b) => (b.entry[0].response = { status: '200' })),
    at: 'Bundle.entry[0]',
  },
  {
    id: 'bdl-5',
    rule: 'an entry has a resource unless it has a request or a response',
    source: 'Bundle bdl-5',
    valid: collection,
    invalid: breaking(collection, (b) => b.entry.push({ fullUrl: 'https://fhir.example.org/Patient/p2' })),
    at: 'Bundle.entry[1]',
  },
  {
    id: 'bdl-7',
    rule: 'fullUrls are unique in a bundle (other versions apart)',
    source: 'Bundle bdl-7',
    valid: transaction,
    invalid: breaking(transaction, (b) => (b.entry[1].fullUrl = b.entry[0].fullUrl)),
    at: 'Bundle.entry[1]',
  },
  {
    id: 'bdl-8',
    rule: 'a fullUrl is not a version-specific reference',
    source: 'Bundle.entry bdl-8',
    valid: collection,
    invalid: breaking(collection, (b) => (b.entry[0].fullUrl = 'https://fhir.example.org/Patient/p1/_history/2')),
    at: 'Bundle.entry[0]',
  },
  {
    id: 'fullurl-id',
    rule: "a RESTful fullUrl ends with the entry's resource type and id",
    source: 'bundle.html#bundle-unique ("SHALL end with the Resource.id")',
    valid: collection,
    invalid: breaking(collection, (b) => (b.entry[0].fullUrl = 'https://fhir.example.org/Patient/p9')),
    at: 'Bundle.entry[0].fullUrl',
  },
  {
    id: 'fullurl-type',
    rule: "a RESTful fullUrl names the type of the entry's resource",
    source: 'bundle.html#bundle-unique',
    valid: collection,
    invalid: breaking(collection, (b) => (b.entry[0].fullUrl = 'https://fhir.example.org/Practitioner/p1')),
    at: 'Bundle.entry[0].fullUrl',
  },
  {
    id: 'transaction-put-id',
    rule: "a PUT entry's resource id is the id its request url names",
    source: 'http.html#transaction, http.html#update',
    valid: transaction,
    invalid: breaking(transaction, (b) => (b.entry[0].request.url = 'Patient/p2')),
    at: 'Bundle.entry[0].request.url',
  },
  {
    id: 'transaction-url-type',
    rule: "a POST or PUT entry's request url names the type of the entry's resource",
    source: 'http.html#transaction',
    valid: transaction,
    invalid: breaking(transaction, (b) => (b.entry[1].request.url = 'Observation')),
    at: 'Bundle.entry[1].request.url',
  },
  {
    id: 'urn-resolves',
    rule: 'a urn:uuid reference inside a bundle resolves to an entry',
    source: 'bundle.html#references',
    valid: document,
    invalid: breaking(document, (b) => (b.entry[0].resource.subject.reference = 'urn:uuid:00000000-0000-4000-8000-000000000000')),
    at: 'Bundle.entry[0].resource.subject.reference',
  },
  {
    id: 'dom-2',
    rule: 'a contained resource holds no contained resources',
    source: 'DomainResource dom-2',
    valid: withContained,
    invalid: breaking(withContained, (o) => {
      o.contained[0] = { resourceType: 'Patient', id: 'p', contained: [{ resourceType: 'Organization', id: 'o' }], managingOrganization: { reference: '#o' } };
    }),
    at: 'Observation',
  },
  {
    id: 'dom-3',
    rule: 'a contained resource is referenced from the rest of the resource or refers to its container',
    source: 'DomainResource dom-3',
    valid: withContained,
    invalid: breaking(withContained, (o) => delete o.subject),
    at: 'Observation.contained[0]',
  },
  {
    id: 'dom-4',
    rule: 'a contained resource has no meta.versionId or meta.lastUpdated',
    source: 'DomainResource dom-4',
    valid: withContained,
    invalid: breaking(withContained, (o) => (o.contained[0].meta = { versionId: '1' })),
    at: 'Observation',
  },
  {
    id: 'dom-5',
    rule: 'a contained resource has no security labels',
    source: 'DomainResource dom-5',
    valid: withContained,
    invalid: breaking(withContained, (o) => (o.contained[0].meta = { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] })),
    at: 'Observation',
  },
  {
    id: 'ref-1',
    rule: 'a local reference names a contained resource',
    source: 'Reference ref-1',
    valid: withContained,
    invalid: breaking(withContained, (o) => (o.subject.reference = '#q')),
    at: 'Observation.subject',
  },
  {
    id: 'contained-id',
    rule: 'a contained resource has an id (the one its references use)',
    source: 'references.html#contained',
    valid: withContained,
    invalid: breaking(withContained, (o) => delete o.contained[0].id),
    at: 'Observation.contained[0]',
  },
];
