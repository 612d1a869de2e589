// Single resources: the CapabilityStatement, create, read, update, vread, delete, If-Match,
// Prefer, JSON Patch, history at every level and the conditional interactions.

import { randomUUID } from 'node:crypto';
import { byVia, count, expectOutcome, pathOf, patient, uniqueIdentifier, type FhirRequestFn, type Json, type TargetOf, caseTest, type CaseOptions } from './target';

export function resourcesCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  const req: FhirRequestFn = (...a) => t().req(...a);
  const base = (): string => t().base;

  describe('CapabilityStatement', () => {
    test('states the interactions, search parameters and operations implemented', async () => {
      const res = await req('GET', '/metadata');
      expect(res.status).toBe(200);
      const cs = res.json;
      expect(cs.resourceType).toBe('CapabilityStatement');
      expect(cs.fhirVersion).toBe('4.0.1');
      // Through the proxy the front door answers itself: what the shipped policy lets through
      // (no delete) and the tier serving each interaction supports. Straight at a writable
      // worker, the worker's own statement.
      const viaProxy = t().via === 'proxy';
      expect(cs.software.name).toBe(viaProxy ? 'fhirguard' : 'fhirguard reference worker');
      const rest = cs.rest[0];
      expect(rest.interaction.map((i: Json) => i.code).sort()).toEqual(['batch', 'history-system', 'transaction']);
      const byType = new Map<string, Json>(rest.resource.map((r: Json) => [r.type, r]));
      expect(byType.size).toBe(146);
      const p = byType.get('Patient')!;
      const reads = ['history-instance', 'history-type', 'read', 'search-type', 'vread'];
      expect(p.interaction.map((i: Json) => i.code).sort()).toEqual([...reads, 'create', ...(viaProxy ? [] : ['delete']), 'patch', 'update'].sort());
      expect(p.conditionalDelete).toBe(viaProxy ? 'not-supported' : 'single');
      const params = new Map<string, string>(p.searchParam.map((s: Json) => [s.name, s.type]));
      expect(params.get('name')).toBe('string');
      expect(params.get('birthdate')).toBe('date');
      expect(params.get('general-practitioner')).toBe('reference');
      expect(params.get('_id')).toBe('token');
      expect(params.has('phonetic')).toBe(true);
      expect(p.operation.map((o: Json) => o.name).sort()).toEqual(['everything', 'validate']);
      expect(p.searchRevInclude).toContain('Observation:subject');
      const obs = byType.get('Observation')!;
      const obsParams = obs.searchParam.map((s: Json) => s.name);
      expect(obsParams).toContain('value-quantity');
      expect(obsParams).not.toContain('code-value-quantity'); // composite: not implemented
      expect(obs.operation.map((o: Json) => o.name)).toEqual(['validate']);
      expect(obs.searchInclude).toContain('Observation:subject');
    });
  });

  describe('create, read, update, vread, delete', () => {
    test('create assigns the id and meta; read returns the stored resource', async () => {
      const body = patient({ id: 'client-chosen', meta: { versionId: '77', tag: [{ system: 'urn:t', code: 'x' }] } });
      const created = await req('POST', '/Patient', body);
      expect(created.status).toBe(201);
      const id = created.json.id;
      expect(id).not.toBe('client-chosen');
      expect(created.json.meta.versionId).toBe('1');
      expect(created.json.meta.tag).toEqual([{ system: 'urn:t', code: 'x' }]);
      expect(Date.parse(created.json.meta.lastUpdated)).toBeGreaterThan(Date.now() - 600_000);
      expect(created.headers.location).toBe(`${base()}/Patient/${id}/_history/1`);
      expect(created.headers.etag).toBe('W/"1"');

      const read = await req('GET', `/Patient/${id}`);
      expect(read.status).toBe(200);
      expect(read.json).toEqual(created.json);
      expect(read.headers.etag).toBe('W/"1"');
      expect(read.headers['last-modified']).toBe(new Date(created.json.meta.lastUpdated).toUTCString());
    });

    test('every update and delete makes a version; old versions stay readable; a deleted resource is 410', async () => {
      const { json: v1 } = await req('POST', '/Patient', patient());
      const id = v1.id;
      const v2 = await req('PUT', `/Patient/${id}`, { ...v1, gender: 'female' });
      expect(v2.status).toBe(200);
      expect(v2.json.meta.versionId).toBe('2');
      expect(v2.headers.etag).toBe('W/"2"');
      const v3 = await req('PUT', `/Patient/${id}`, { ...v1, gender: 'male' });
      expect(v3.json.meta.versionId).toBe('3');

      const old = await req('GET', `/Patient/${id}/_history/1`);
      expect(old.status).toBe(200);
      expect(old.json.gender).toBe('other');
      expect(old.json.meta.versionId).toBe('1');
      expect((await req('GET', `/Patient/${id}/_history/2`)).json.gender).toBe('female');
      expectOutcome(await req('GET', `/Patient/${id}/_history/9`), 404);

      const del = await req('DELETE', `/Patient/${id}`);
      expect(del.status).toBe(200);
      expect(del.headers.etag).toBe('W/"4"');
      expectOutcome(await req('GET', `/Patient/${id}`), 410, /deleted/);
      expectOutcome(await req('GET', `/Patient/${id}/_history/4`), 410);
      expect((await req('GET', `/Patient/${id}/_history/3`)).json.gender).toBe('male');
      expect(await count(t(), `Patient?_id=${id}`)).toBe(0);

      // Deleting again changes nothing; an update brings it back as the next version.
      expect((await req('DELETE', `/Patient/${id}`)).status).toBe(200);
      const back = await req('PUT', `/Patient/${id}`, { ...v1, gender: 'unknown' });
      expect(back.status).toBe(201);
      expect(back.json.meta.versionId).toBe('5');
      expect(await count(t(), `Patient?_id=${id}`)).toBe(1);

      const hist = await req('GET', `/Patient/${id}/_history`);
      expect(hist.status).toBe(200);
      expect(hist.json.type).toBe('history');
      expect(hist.json.total).toBe(5);
      expect(hist.json.entry.map((e: Json) => e.request.method)).toEqual(['PUT', 'DELETE', 'PUT', 'PUT', 'POST']);
      expect(hist.json.entry.map((e: Json) => e.response.etag)).toEqual(['W/"5"', 'W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']);
      expect(hist.json.entry[1].resource).toBeUndefined();
    });

    test('update creates a resource at a new id (update-as-create)', async () => {
      const id = `made-by-put-${Date.now()}`;
      const res = await req('PUT', `/Patient/${id}`, patient({ id }));
      expect(res.status).toBe(201);
      expect(res.json.id).toBe(id);
      expect(res.json.meta.versionId).toBe('1');
      expect(res.headers.location).toBe(`${base()}/Patient/${id}/_history/1`);
    });

    test('If-Match: a stale version is 412 and changes nothing; the current one passes', async () => {
      const { json: v1 } = await req('POST', '/Patient', patient());
      await req('PUT', `/Patient/${v1.id}`, { ...v1, gender: 'female' });
      expectOutcome(await req('PUT', `/Patient/${v1.id}`, { ...v1, gender: 'male' }, { 'if-match': 'W/"1"' }), 412, /version 2/);
      expectOutcome(await req('DELETE', `/Patient/${v1.id}`, undefined, { 'if-match': 'W/"1"' }), 412);
      expect((await req('GET', `/Patient/${v1.id}`)).json.gender).toBe('female');
      const ok = await req('PUT', `/Patient/${v1.id}`, { ...v1, gender: 'male' }, { 'if-match': 'W/"2"' });
      expect(ok.status).toBe(200);
      expect(ok.json.meta.versionId).toBe('3');
    });

    test('Prefer: return=minimal and return=OperationOutcome', async () => {
      const minimal = await req('POST', '/Patient', patient(), { prefer: 'return=minimal' });
      expect(minimal.status).toBe(201);
      expect(minimal.text).toBe('');
      expect(minimal.headers.location).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
      const oo = await req('POST', '/Patient', patient(), { prefer: 'return=OperationOutcome' });
      expect(oo.status).toBe(201);
      expect(oo.json.resourceType).toBe('OperationOutcome');
    });
  });

  describe('patch', () => {
    test('JSON Patch makes a new version', async () => {
      const { json: v1 } = await req('POST', '/Patient', patient());
      const res = await req(
        'PATCH',
        `/Patient/${v1.id}`,
        [
          { op: 'replace', path: '/gender', value: 'female' },
          { op: 'add', path: '/active', value: true },
        ],
        {
          'content-type': 'application/json-patch+json',
        },
      );
      expect(res.status).toBe(200);
      expect(res.json.gender).toBe('female');
      expect(res.json.active).toBe(true);
      expect(res.json.meta.versionId).toBe('2');
      expect((await req('GET', `/Patient/${v1.id}`)).json.active).toBe(true);
    });

    test('a patch that cannot apply, or that breaks the resource, is 422 and changes nothing', async () => {
      const { json: v1 } = await req('POST', '/Patient', patient());
      const headers = { 'content-type': 'application/json-patch+json' };
      expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'test', path: '/gender', value: 'female' }], headers), 422, /cannot be applied/);
      expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'replace', path: '/id', value: 'other' }], headers), 422, byVia(t(), /resourceType or id/, /must not change id/));
      expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'add', path: '/gender', value: 12 }], headers), 422);
      expectOutcome(await req('PATCH', `/Patient/${v1.id}`, { op: 'add' }, headers), 400, /array/);
      // Sent as application/fhir+json, the proxy reads a FHIRPath Patch, which must be an object.
      expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'add', path: '/active', value: true }]), byVia(t(), 415, 400), byVia(t(), /json-patch/, /object/));
      expectOutcome(await req('PATCH', `/Patient/nope-${Date.now()}`, [{ op: 'add', path: '/active', value: true }], headers), 404);
      const now = await req('GET', `/Patient/${v1.id}`);
      expect(now.json.meta.versionId).toBe('1');
      expect(now.json.gender).toBe('other');
    });
  });

  describe('history', () => {
    test('type and system history page with _count and filter with _since', async () => {
      const type = 'Basic';
      const code = { coding: [{ system: 'urn:fhirguard:test', code: randomUUID() }] };
      const first = await req('POST', `/${type}`, { resourceType: type, code });
      const before = await req('GET', `/${type}/_history`);
      const since = first.json.meta.lastUpdated;
      for (let i = 0; i < 3; i++) await req('PUT', `/${type}/${first.json.id}`, { resourceType: type, id: first.json.id, code, subject: undefined });
      const after = await req('GET', `/${type}/_history?_count=2`);
      expect(after.json.total).toBe(before.json.total + 3);
      expect(after.json.entry).toHaveLength(2);
      const next = after.json.link.find((l: Json) => l.relation === 'next').url as string;
      expect(next).toContain('_offset=2');
      const page2 = await req('GET', pathOf(t(), next));
      expect(page2.json.entry[0].response.etag).toBe('W/"2"');

      const sinceRes = await req('GET', `/${type}/${first.json.id}/_history?_since=${encodeURIComponent(since)}`);
      expect(sinceRes.json.total).toBe(4);
      const later = await req('GET', `/${type}/${first.json.id}/_history?_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
      expect(later.json.total).toBe(0);

      const system = await req('GET', '/_history?_count=1');
      expect(system.json.entry[0].fullUrl).toBe(`${base()}/${type}/${first.json.id}`);
      expect(system.json.total).toBeGreaterThanOrEqual(4);
      expectOutcome(await req('GET', '/_history?_count=x'), 400);
      expectOutcome(await req('GET', '/_history?name=x'), 400, byVia(t(), /_since/, /not a parameter of history/));
    });
  });

  describe('conditional interactions', () => {
    test('conditional create: none → 201, one → 200 with the existing resource, several → 412', async () => {
      const ident = uniqueIdentifier();
      const criteria = `identifier=${ident.system}|${ident.value}`;
      const first = await req('POST', '/Patient', patient({ identifier: [ident] }), { 'if-none-exist': criteria });
      expect(first.status).toBe(201);
      const again = await req('POST', '/Patient', patient({ identifier: [ident] }), { 'if-none-exist': criteria });
      expect(again.status).toBe(200);
      expect(again.json.id).toBe(first.json.id);
      expect(await count(t(), `Patient?${criteria}`)).toBe(1);
      await req('POST', '/Patient', patient({ identifier: [ident] }));
      expectOutcome(await req('POST', '/Patient', patient({ identifier: [ident] }), { 'if-none-exist': criteria }), 412);
      expect(await count(t(), `Patient?${criteria}`)).toBe(2);
    });

    test('conditional update: none → create, one → update it, several → 412, wrong id → 400', async () => {
      const ident = uniqueIdentifier();
      const url = `/Patient?identifier=${ident.system}|${ident.value}`;
      const created = await req('PUT', url, patient({ identifier: [ident] }));
      expect(created.status).toBe(201);
      const updated = await req('PUT', url, patient({ identifier: [ident], gender: 'female' }));
      expect(updated.status).toBe(200);
      expect(updated.json.id).toBe(created.json.id);
      expect(updated.json.meta.versionId).toBe('2');
      expectOutcome(await req('PUT', url, patient({ id: 'someone-else', identifier: [ident] })), 400, /not the id/);
      // No match, but the body names an existing resource the criteria do not match: 409.
      const { json: other } = await req('POST', '/Patient', patient());
      const fresh = uniqueIdentifier();
      expectOutcome(await req('PUT', `/Patient?identifier=${fresh.system}|${fresh.value}`, patient({ id: other.id, identifier: [fresh] })), 409, /does not match/);
      expect((await req('GET', `/Patient/${other.id}`)).json.meta.versionId).toBe('1');
      await req('POST', '/Patient', patient({ identifier: [ident] }));
      expectOutcome(await req('PUT', url, patient({ identifier: [ident] })), 412);
    });

    test('conditional patch: one match patched, none → 404, several → 412', async () => {
      const ident = uniqueIdentifier();
      const url = `/Patient?identifier=${ident.system}|${ident.value}`;
      const headers = { 'content-type': 'application/json-patch+json' };
      const patch = [{ op: 'add', path: '/active', value: true }];
      expectOutcome(await req('PATCH', url, patch, headers), 404);
      const { json } = await req('POST', '/Patient', patient({ identifier: [ident] }));
      const patched = await req('PATCH', url, patch, headers);
      expect(patched.status).toBe(200);
      expect(patched.json).toMatchObject({ id: json.id, active: true, meta: { versionId: '2' } });
      await req('POST', '/Patient', patient({ identifier: [ident] }));
      expectOutcome(await req('PATCH', url, patch, headers), 412);
      expect((await req('GET', `/Patient/${json.id}`)).json.meta.versionId).toBe('2');
    });

    test('conditional delete: one match deleted, none is not an error, several → 412', async () => {
      const ident = uniqueIdentifier();
      const url = `/Patient?identifier=${ident.system}|${ident.value}`;
      const { json } = await req('POST', '/Patient', patient({ identifier: [ident] }));
      expect((await req('DELETE', url)).status).toBe(200);
      expectOutcome(await req('GET', `/Patient/${json.id}`), 410);
      const none = await req('DELETE', url);
      expect(none.status).toBe(200);
      expect(none.json.issue[0].diagnostics).toMatch(/nothing (has been )?deleted/i);
      await req('POST', '/Patient', patient({ identifier: [ident] }));
      await req('POST', '/Patient', patient({ identifier: [ident] }));
      expectOutcome(await req('DELETE', url), 412);
      expect(await count(t(), url.slice(1))).toBe(2);
      expectOutcome(await req('DELETE', '/Patient'), 400, byVia(t(), /criterion/, /needs search criteria/));
    });
  });
}
