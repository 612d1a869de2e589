// Requests that are refused, each with an OperationOutcome and the status that fits. Through
// the proxy nearly all of them are answered by the proxy itself, before any worker (same
// status; its own wording where the worker's differs); what only the worker can know (a
// resource that does not exist) still reaches a worker.

import { byVia, expectOutcome, patient, type FhirRequestFn, type Json, type TargetOf, caseTest, type CaseOptions } from './target';

export function refusalsCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  const req: FhirRequestFn = (...a) => t().req(...a);

  describe('refusals are OperationOutcomes with the right status', () => {
    test('bad JSON, wrong type, id mismatch, unknown type, invalid resource', async () => {
      expectOutcome(await req('POST', '/Patient', '{"resourceType": "Patient",'), 400, /not valid JSON/);
      expectOutcome(await req('POST', '/Patient', { resourceType: 'Observation', status: 'final', code: { text: 'x' } }), 400, /does not match/);
      expectOutcome(await req('POST', '/Patient', { resourceType: 'Nonsense' }), 400, byVia(t(), /not an R4 resource type/, /does not match/));
      expectOutcome(await req('POST', '/Patient', []), 400);
      expectOutcome(await req('POST', '/Patient'), byVia(t(), 400, 415), /body|Content-Type/);
      expectOutcome(await req('PUT', '/Patient/abc', patient({ id: 'xyz' })), 400, /does not match the URL's id/);
      expectOutcome(await req('PUT', '/Patient/abc', patient()), 400, /needs the body's id/);
      expectOutcome(await req('GET', '/Nonsense/1'), 404, /not an R4 resource type/);
      expectOutcome(await req('GET', '/Patient/bad$id'), 400, /not a FHIR id/);
      expectOutcome(await req('GET', `/Patient/unknown-${Date.now()}`), 404);
      const invalid = await req('POST', '/Patient', { resourceType: 'Patient', birthDate: 'yesterday', name: { family: 'x' } });
      expectOutcome(invalid, 422);
      expect(invalid.json.issue.map((i: Json) => i.expression[0]).sort()).toEqual(['Patient.birthDate', 'Patient.name']);
    });

    test('methods, media types and paths', async () => {
      const notAllowed = await req('POST', '/Patient/123', patient());
      expectOutcome(notAllowed, 405);
      expect(notAllowed.headers.allow).toBe(byVia(t(), 'GET, PUT, PATCH, DELETE', 'GET, HEAD, PUT, PATCH, DELETE'));
      expectOutcome(await req('GET', '/'), 405);
      expectOutcome(await req('POST', '/Patient', '<Patient/>', { 'content-type': 'application/fhir+xml' }), 415);
      expectOutcome(await req('POST', '/Patient', JSON.stringify(patient()), { 'content-type': 'text/plain' }), 415);
      expectOutcome(await req('POST', '/Patient', JSON.stringify(patient()), { 'content-type': 'application/fhir+json; charset=latin1' }), 415);
      expect((await req('POST', '/Patient', JSON.stringify(patient()), { 'content-type': 'application/json' })).status).toBe(201);
      expectOutcome(await req('GET', '/metadata', undefined, { accept: 'application/fhir+xml' }), 406);
      expectOutcome(await req('GET', '/Patient?_format=xml'), 406);
      expect((await req('GET', '/metadata', undefined, { accept: 'application/json' })).status).toBe(200);
      expectOutcome(await req('GET', '/Patient/1/_history/1/extra'), 404);
      expectOutcome(await req('GET', '/Patient/%E0%A4%A'), 400);
    });

    test('hostile bodies: deep nesting and oversized JSON are refused without harming the worker', async () => {
      const depth = 20_000;
      const deep = '{"resourceType":"Patient","extension":' + '[{"url":"urn:x","extension":'.repeat(depth) + '[]' + '}]'.repeat(depth) + '}';
      expectOutcome(await req('POST', '/Patient', deep), 400, /deeper/);
      const huge = Buffer.alloc(33 * 1024 * 1024, 0x20);
      // The answer is 413, unless the connection is closed while the body is still being sent
      // (a failed request: its error may come from another realm, so no instanceof Error).
      const big = await req('POST', '/Patient', huge).catch((err: unknown) => ({ failed: err }));
      if (!('failed' in big)) expectOutcome(big, 413);
      expect((await req('GET', '/metadata')).status).toBe(200);
    });
  });
}
