// Headers an HTTP client library can send: content types and charsets, Accept, Prefer
// (lenient handling), the method and path overrides servers honour, Forwarded, many and long
// headers, repeated Content-Type. Expect, Upgrade, Transfer-Encoding and Content-Length
// games need raw bytes and live in framing.ts.

import fc from 'fast-check';
import { METHOD_OVERRIDE_HEADERS } from './names';

const contentType = fc.constantFrom(
  'application/fhir+json',
  'application/fhir+json',
  'application/json',
  'application/fhir+json; charset=utf-8',
  'application/fhir+json; charset=latin1',
  'application/fhir+json; fhirVersion=3.0',
  'application/json-patch+json',
  'application/fhir+xml',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'APPLICATION/FHIR+JSON',
  'application/fhir+json, application/xml',
  '',
);

const accept = fc.constantFrom('application/fhir+json', 'application/fhir+xml', '*/*', 'text/html', 'application/json;q=0', 'x/y, */*;q=0.1', '');

const extra: fc.Arbitrary<[string, string][]> = fc.oneof(
  fc.tuple(fc.constantFrom(...METHOD_OVERRIDE_HEADERS), fc.constantFrom('DELETE', 'PATCH', 'PUT', 'GET', 'delete')).map(([n, v]) => [[n, v]] as [string, string][]),
  fc
    .tuple(fc.constantFrom('X-Original-URL', 'X-Rewrite-URL'), fc.constantFrom('/fhir/Practitioner/1', '/Practitioner/1', '/fhir/Patient/1/$everything'))
    .map(([n, v]) => [[n, v]] as [string, string][]),
  fc.constantFrom<[string, string][]>([['Forwarded', 'for=203.0.113.9;host=fz-forwarded.example;proto=https']], [['X-Forwarded-For', '203.0.113.9']], [['X-Forwarded-Prefix', '/evil']]),
  fc.constantFrom<[string, string][]>([['Prefer', 'handling=lenient']], [['Prefer', 'handling=strict']], [['Prefer', 'return=representation, handling=lenient']]),
  fc.integer({ min: 50, max: 150 }).map((n) => Array.from({ length: n }, (_, i) => [`x-fz-${i}`, 'v'] as [string, string])),
  fc.integer({ min: 8_000, max: 40_000 }).map((n) => [['x-fz-long', 'a'.repeat(n)]] as [string, string][]),
  fc.constantFrom<[string, string][]>([['If-Match', 'W/"1"']], [['If-None-Exist', 'identifier=x']], [['If-None-Exist', '_include=Encounter:practitioner']], [['If-None-Exist', '_type=Practitioner']]),
  fc.constantFrom<[string, string][]>([['Authorization', 'Bearer x']], [['Cookie', 'a=b']], [['Range', 'bytes=0-1']]),
);

export interface HeaderChoice {
  contentType: string | null;
  accept: string | null;
  extra: [string, string][];
  /** Send Content-Type twice, with different values. */
  twoContentTypes: boolean;
}

export const headerArb: fc.Arbitrary<HeaderChoice> = fc.record({
  contentType: fc.option(contentType, { freq: 8 }),
  accept: fc.option(accept, { freq: 3 }),
  extra: fc.oneof({ weight: 2, arbitrary: fc.constant<[string, string][]>([]) }, { weight: 1, arbitrary: fc.array(extra, { minLength: 1, maxLength: 2 }).map((a) => a.flat()) }),
  twoContentTypes: fc.oneof({ weight: 19, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
