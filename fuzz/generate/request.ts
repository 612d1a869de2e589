// HTTP-level cases: a method, a path, a query, headers and a body drawn together. Bodies go
// with the methods that carry one (and sometimes with those that do not).

import fc from 'fast-check';
import { bodyArb } from './bodies';
import type { HttpCase } from './case';
import { headerArb } from './headers';
import { TYPES } from './names';
import { pathArb } from './paths';
import { queryArb } from './queries';
import { sometimes } from './sometimes';

const method = fc.oneof(
  { weight: 10, arbitrary: fc.constant('GET') },
  { weight: 5, arbitrary: fc.constantFrom('POST', 'PUT') },
  { weight: 2, arbitrary: fc.constantFrom('PATCH', 'DELETE', 'HEAD') },
  { weight: 1, arbitrary: fc.constantFrom('OPTIONS', 'TRACE', 'PROPFIND', 'get', 'CONNECT', 'M-SEARCH', 'FOO') },
);

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/** The resource type a path names first, for the body template. */
function typeOf(path: string): string {
  return path.split(/[/?]/).find((s) => TYPES.includes(s)) ?? 'Patient';
}

export const httpCaseArb: fc.Arbitrary<HttpCase> = fc.tuple(method, pathArb, sometimes(queryArb, 2), headerArb, fc.integer({ min: 0, max: 9 })).chain(([m, path, query, h, bodyDie]) => {
  const wantsBody = WITH_BODY.has(m) ? bodyDie > 0 : bodyDie === 0;
  return (wantsBody ? fc.option(bodyArb(typeOf(path)), { nil: undefined, freq: 20 }) : fc.constant(undefined)).map((body) => {
    const headers: [string, string][] = [];
    if (h.contentType !== null) headers.push(['content-type', h.contentType]);
    if (h.twoContentTypes) headers.push(['content-type', 'application/fhir+xml']);
    if (h.accept !== null) headers.push(['accept', h.accept]);
    headers.push(...h.extra);
    if (body?.encoding) headers.push(['content-encoding', body.encoding]);
    const klass = body ? (body.encoding ? 'body-encoded' : 'body') : query ? 'query' : h.extra.length ? 'headers' : 'path';
    return { kind: 'http', klass, method: m, target: query === null ? path : `${path}?${query}`, headers, body: body?.bytes } satisfies HttpCase;
  });
});
