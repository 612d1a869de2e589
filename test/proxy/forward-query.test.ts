// The query the proxy forwards (src/proxy/forward-query.ts): what lenient handling dropped is
// gone, and characters RFC 3986 does not allow in a query are percent-encoded, so a strict
// server (Tomcat under HAPI FHIR) takes `identifier=system|code` as FHIR clients send it.

import { forwardQuery, strictQuery } from '../../src/proxy/forward-query';

test('characters outside RFC 3986 are escaped as their bytes; everything else is left as it is', () => {
  expect(strictQuery('identifier=urn:oid:1.2.3|abc&_summary=count')).toBe('identifier=urn:oid:1.2.3%7Cabc&_summary=count');
  expect(strictQuery('a=[x]{y}^`\\"<>')).toBe('a=%5Bx%5D%7By%7D%5E%60%5C%22%3C%3E');
  // Already valid: the very same string (no copy on the hot path).
  const valid = "name=Ren%C3%A9&_include=Observation:subject&x=a/b?c@d!$'()*+,;=~._-";
  expect(strictQuery(valid)).toBe(valid);
  // A raw URL's characters are its bytes: a byte above 0x7f stays that byte.
  expect(strictQuery('name=Ren\u00c3\u00a9')).toBe('name=Ren%C3%A9');
});

test('lenient drops go, then the rest is made strict', () => {
  expect(forwardQuery('family=x&unknown=1&identifier=s|v', ['unknown'])).toBe('family=x&identifier=s%7Cv');
  expect(forwardQuery('family=x', [])).toBe('family=x');
});
