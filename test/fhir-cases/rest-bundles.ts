// Batches and transactions POSTed to the base: references resolved, all-or-nothing with
// rollback, entries failing independently in a batch, PATCH entries, and bundles refused.

import { randomUUID } from 'node:crypto';
import { byVia, count, expectOutcome, pathOf, patient, uniqueIdentifier, type FhirRequestFn, type Json, type TargetOf, caseTest, type CaseOptions } from './target';

export function bundlesCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  const req: FhirRequestFn = (...a) => t().req(...a);

  describe('batch and transaction', () => {
    test('a transaction resolves urn:uuid fullUrls and conditional references to assigned ids', async () => {
      const ident = uniqueIdentifier();
      const existing = await req('POST', '/Organization', { resourceType: 'Organization', name: 'Existing Org', identifier: [ident] });
      const pUrn = `urn:uuid:${randomUUID()}`;
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: `urn:uuid:${randomUUID()}`,
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: pUrn } },
            request: { method: 'POST', url: 'Observation' },
          },
          {
            fullUrl: pUrn,
            resource: patient({ managingOrganization: { reference: `Organization?identifier=${ident.system}|${ident.value}` } }),
            request: { method: 'POST', url: 'Patient' },
          },
        ],
      };
      const res = await req('POST', '/', bundle);
      expect(res.status).toBe(200);
      expect(res.json.type).toBe('transaction-response');
      const [obsLoc, patLoc] = res.json.entry.map((e: Json) => e.response.location as string);
      expect(res.json.entry.map((e: Json) => e.response.status)).toEqual(['201 Created', '201 Created']);
      const patientId = /Patient\/([^/]+)\//.exec(patLoc)![1];
      const obs = await req('GET', pathOf(t(), obsLoc).replace(/\/_history\/\d+$/, ''));
      expect(obs.json.subject.reference).toBe(`Patient/${patientId}`);
      const pat = await req('GET', `/Patient/${patientId}`);
      expect(pat.json.managingOrganization.reference).toBe(`Organization/${existing.json.id}`);
    });

    test('a transaction whose entry fails at the worker after others were written is rolled back entirely', async () => {
      const ident = uniqueIdentifier();
      const { json: target } = await req('POST', '/Patient', patient());
      const { json: other } = await req('POST', '/Patient', patient());
      expect((await req('PUT', `/Patient/${other.id}`, { ...other, gender: 'female' })).json.meta.versionId).toBe('2');
      const historyBefore = (await req('GET', '/_history?_count=0')).json.total;
      // Valid FHIR a proxy lets through: only the worker, holding the data, sees the last
      // entry's stale If-Match, once the create and the first update are done.
      const res = await req('POST', '/', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: patient({ identifier: [ident] }), request: { method: 'POST', url: 'Patient' } },
          { resource: { ...target, gender: 'female' }, request: { method: 'PUT', url: `Patient/${target.id}` } },
          { resource: { ...other, gender: 'male' }, request: { method: 'PUT', url: `Patient/${other.id}`, ifMatch: 'W/"1"' } },
        ],
      });
      expectOutcome(res, 412, /Bundle\.entry\[2\]/);
      expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
      const now = await req('GET', `/Patient/${target.id}`);
      expect(now.json.gender).toBe('other');
      expect(now.json.meta.versionId).toBe('1');
      expect((await req('GET', `/Patient/${other.id}`)).json.meta.versionId).toBe('2');
      expect((await req('GET', '/_history?_count=0')).json.total).toBe(historyBefore);
    });

    test('a transaction with entries that conflict or are invalid is refused whole, nothing stored', async () => {
      const ident = uniqueIdentifier();
      const { json: target } = await req('POST', '/Patient', patient());
      const historyBefore = (await req('GET', '/_history?_count=0')).json.total;
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: patient({ identifier: [ident] }), request: { method: 'POST', url: 'Patient' } },
          { resource: { ...target, gender: 'female' }, request: { method: 'PUT', url: `Patient/${target.id}` } },
          { request: { method: 'DELETE', url: `Patient/${target.id}` } },
          { resource: { resourceType: 'Observation', status: 'not-a-status-code' }, request: { method: 'POST', url: 'Observation' } },
        ],
      };
      const res = await req('POST', '/', bundle);
      expectOutcome(res, byVia(t(), 400, 422), byVia(t(), /Bundle\.entry\[1\] and Bundle\.entry\[2\]/, /Bundle\.entry\[3\]/));
      // Same again without the overlap: now the invalid Observation fails it (422).
      bundle.entry.splice(2, 1);
      const res2 = await req('POST', '/', bundle);
      expectOutcome(res2, 422, /Bundle\.entry\[2\]/);
      expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
      const now = await req('GET', `/Patient/${target.id}`);
      expect(now.json.gender).toBe('other');
      expect(now.json.meta.versionId).toBe('1');
      expect((await req('GET', '/_history?_count=0')).json.total).toBe(historyBefore);
    });

    test('a transaction referring to a fullUrl it does not contain is refused, nothing stored', async () => {
      const ident = uniqueIdentifier();
      const res = await req('POST', '/', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: patient({ identifier: [ident], link: [{ other: { reference: `urn:uuid:${randomUUID()}` }, type: 'seealso' }] }), request: { method: 'POST', url: 'Patient' } }],
      });
      expectOutcome(res, byVia(t(), 400, 422), byVia(t(), /not the fullUrl of any entry/, /urn:uuid/));
      expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
    });

    test('batch entries succeed or fail independently; reads run too', async () => {
      const ident = uniqueIdentifier();
      const { json: existing } = await req('POST', '/Patient', patient());
      await req('PUT', `/Patient/${existing.id}`, { ...existing, gender: 'female' });
      const res = await req('POST', '/', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: patient({ identifier: [ident] }), request: { method: 'POST', url: 'Patient' } },
          { resource: { ...existing, gender: 'male' }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"1"' } },
          { request: { method: 'GET', url: `Patient/${existing.id}` } },
          { request: { method: 'GET', url: `Patient/does-not-exist-${Date.now()}` } },
          { request: { method: 'GET', url: `Patient?identifier=${ident.system}|${ident.value}` } },
        ],
      });
      expect(res.status).toBe(200);
      expect(res.json.type).toBe('batch-response');
      const statuses = res.json.entry.map((e: Json) => e.response.status);
      expect(statuses).toEqual(['201 Created', '412 Precondition Failed', '200 OK', '404 Not Found', '200 OK']);
      expect(res.json.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
      expect(res.json.entry[2].resource).toMatchObject({ id: existing.id, gender: 'female' });
      expect(res.json.entry[4].resource).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
      expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(1);
    });

    test('a batch entry that is invalid or not a FHIR interaction: the worker fails that entry, the proxy the whole batch', async () => {
      const ident = uniqueIdentifier();
      const batch = (bad: Json): Json => ({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ resource: patient({ identifier: [ident] }), request: { method: 'POST', url: 'Patient' } }, bad],
      });
      const invalid = await req('POST', '/', batch({ resource: { resourceType: 'Patient', gender: 7 }, request: { method: 'POST', url: 'Patient' } }));
      const unknown = await req('POST', '/', batch({ request: { method: 'FETCH', url: 'Patient' } }));
      if (t().via === 'worker') {
        expect([invalid, unknown].map((r) => r.json.entry.map((e: Json) => e.response.status))).toEqual([
          ['201 Created', '422 Unprocessable Entity'],
          ['201 Created', '400 Bad Request'],
        ]);
        expect(invalid.json.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
        expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(2);
      } else {
        expectOutcome(invalid, 422, /Bundle\.entry\[1\]/);
        expectOutcome(unknown, 400, /Bundle\.entry\[1\]\.request/);
        expect(await count(t(), `Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
      }
    });

    test('a transaction PATCH entry carries its JSON Patch as a Binary', async () => {
      const { json: p } = await req('POST', '/Patient', patient());
      const data = Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'female' }])).toString('base64');
      const res = await req('POST', '/', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data }, request: { method: 'PATCH', url: `Patient/${p.id}` } }],
      });
      expect(res.status).toBe(200);
      expect(res.json.entry[0].response.status).toBe('200 OK');
      expect((await req('GET', `/Patient/${p.id}`)).json.gender).toBe('female');
    });

    test('an entry cannot be a nested batch or transaction', async () => {
      const res = await req('POST', '/', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Bundle', type: 'transaction', entry: [] }, request: { method: 'POST', url: '/' } }],
      });
      expectOutcome(res, 400, byVia(t(), /cannot itself be a batch/, /cannot contain another one/));
    });

    test('other bundle types are refused', async () => {
      expectOutcome(await req('POST', '/', { resourceType: 'Bundle', type: 'collection', entry: [] }), 400, byVia(t(), /batch and transaction/, /must be a batch or transaction/));
      expectOutcome(await req('POST', '/', patient()), 400, /Bundle/);
    });
  });
}
