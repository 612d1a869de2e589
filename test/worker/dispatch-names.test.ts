// The reference worker's routes are looked up by the request's method (or a bundle entry's):
// a name that every plain object inherits is a method like any other the route does not
// have, a 405 naming what is allowed, never a TypeError.

import { FhirError } from '../../src/fhir/outcome';
import type { FhirRequest, WorkerContext } from '../../src/worker/rest/handler-context';
import { dispatch } from '../../src/worker/rest/dispatch';

const INHERITED = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype'])];

// `metadata` answers without the store, so no database is needed to reach its route.
const context = { readOnly: false } as WorkerContext;

function request(method: string): FhirRequest {
  return { method, segments: ['metadata'], query: [], headers: {}, body: undefined, base: 'http://worker.test/fhir', prefer: 'representation' };
}

test.each(INHERITED)('method %s is not allowed on metadata', (method) => {
  let refusal: unknown;
  try {
    dispatch(context, request(method), () => '{}');
  } catch (err) {
    refusal = err;
  }
  expect(refusal).toBeInstanceOf(FhirError);
  expect({ status: (refusal as FhirError).status, diagnostics: (refusal as FhirError).issues[0].diagnostics }).toEqual({
    status: 405,
    diagnostics: `${method} is not allowed on metadata`,
  });
});

test('GET still reaches it', () => {
  expect(dispatch(context, request('GET'), () => '{"resourceType":"CapabilityStatement"}').status).toBe(200);
});
