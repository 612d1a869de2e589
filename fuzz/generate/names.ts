// Names the generators draw from: the types the policy is about, names every JavaScript
// object inherits (issue 18, class 2), and names that exist nowhere.

export const OBJECT_PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);

export const TYPES = ['Patient', 'Observation', 'Encounter', 'Practitioner', 'PractitionerRole', 'Organization', 'Medication', 'Condition', 'Group', 'List', 'Bundle'];

export const ODD_TYPES = ['practitioner', 'PRACTITIONER', 'Practitioner ', 'Foo', 'Resource', 'DomainResource', ...OBJECT_PROTOTYPE_NAMES];

export const IDS = ['1', 'abc-123', 'a.b', 'x'.repeat(64), 'x'.repeat(65), '', '..', '.', '%2e%2e', '__proto__', 'constructor', '1;x=y', '1%00', '%2F', 'Ω', '1 2', '-1', '0'];

export const OPERATIONS = ['$validate', '$everything', '$meta', '$expunge', '$export', '$graphql', '$lastn', '$process-message', '$constructor', '$__proto__', '$', '$$validate'];

export const SEARCH_PARAMS = [
  'name',
  'family',
  'given',
  'identifier',
  'subject',
  'patient',
  'general-practitioner',
  'performer',
  'participant',
  'practitioner',
  'code',
  'date',
  'birthdate',
  'status',
  'value-quantity',
  'organization',
  'link',
  '_id',
  '_lastUpdated',
  '_count',
  '_sort',
  '_elements',
  '_summary',
  '_total',
  '_contained',
  '_format',
  '_pretty',
  '_list',
  '_tag',
  '_profile',
  '_text',
  '_content',
  'zzz',
];

export const MODIFIERS = ['missing', 'not', 'exact', 'contains', 'text', 'above', 'below', 'in', 'not-in', 'of-type', 'identifier', 'iterate', 'Practitioner', 'Patient', 'Organization', 'Foo', ''];

export const PREFIXES = ['', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap', 'zz'];

export const METHOD_OVERRIDE_HEADERS = ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'];
