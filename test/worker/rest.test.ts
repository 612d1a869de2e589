// The worker's REST interactions against a real worker process over its Unix socket:
// versions and history, conditional interactions, patch, batch and transaction (including
// rollback), operations, search features, and every kind of refusal.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fhirRequest, startWorker, stopAllWorkers, type FhirResult, type WorkerProcess } from '../helpers/worker-process';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dir: string;
let w: WorkerProcess;
const req = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<FhirResult> =>
  fhirRequest(w.socket, method, path, body, headers);

function patient(extra: Json = {}): Json {
  return { resourceType: 'Patient', name: [{ family: 'Testperson', given: ['Alex'] }], gender: 'other', birthDate: '1990-04-05', ...extra };
}

/** An identifier no other test uses, so searches by it see only this test's resources. */
function uniqueIdentifier(): { system: string; value: string } {
  return { system: 'urn:fhirguard:test', value: randomUUID() };
}

function expectOutcome(res: FhirResult, status: number, diagnostics?: RegExp): void {
  expect({ status: res.status, type: res.json?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(res.json.issue.length).toBeGreaterThan(0);
  if (diagnostics) expect(res.json.issue.map((i: Json) => i.diagnostics).join(' | ')).toMatch(diagnostics);
}

async function count(query: string): Promise<number> {
  const res = await req('GET', `/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  expect(res.status).toBe(200);
  return res.json.total;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-rest-'));
  w = await startWorker({ db: join(dir, 'fhir.db') });
}, 120_000);

afterAll(async () => {
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

describe('CapabilityStatement', () => {
  test('states the interactions, search parameters and operations implemented', async () => {
    const res = await req('GET', '/metadata');
    expect(res.status).toBe(200);
    const cs = res.json;
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const rest = cs.rest[0];
    expect(rest.interaction.map((i: Json) => i.code).sort()).toEqual(['batch', 'history-system', 'transaction']);
    const byType = new Map<string, Json>(rest.resource.map((r: Json) => [r.type, r]));
    expect(byType.size).toBe(146);
    const p = byType.get('Patient')!;
    expect(p.interaction.map((i: Json) => i.code).sort()).toEqual(
      ['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread'].sort(),
    );
    const params = new Map<string, string>(p.searchParam.map((s: Json) => [s.name, s.type]));
    expect(params.get('name')).toBe('string');
    expect(params.get('birthdate')).toBe('date');
    expect(params.get('general-practitioner')).toBe('reference');
    expect(params.get('_id')).toBe('token');
    expect(params.has('phonetic')).toBe(true);
    expect(p.operation.map((o: Json) => o.name).sort()).toEqual(['everything', 'validate']);
    const obs = byType.get('Observation')!;
    const obsParams = obs.searchParam.map((s: Json) => s.name);
    expect(obsParams).toContain('value-quantity');
    expect(obsParams).not.toContain('code-value-quantity'); // composite: not implemented
    expect(obs.operation.map((o: Json) => o.name)).toEqual(['validate']);
    expect(obs.searchInclude).toContain('Observation:subject');
    expect(rest.documentation).toMatch(/_revinclude/);
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
    expect(created.headers.location).toBe(`http://localhost/Patient/${id}/_history/1`);
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
    expect(await count(`Patient?_id=${id}`)).toBe(0);

    // Deleting again changes nothing; an update brings it back as the next version.
    expect((await req('DELETE', `/Patient/${id}`)).status).toBe(200);
    const back = await req('PUT', `/Patient/${id}`, { ...v1, gender: 'unknown' });
    expect(back.status).toBe(201);
    expect(back.json.meta.versionId).toBe('5');
    expect(await count(`Patient?_id=${id}`)).toBe(1);

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
    expect(res.headers.location).toBe(`http://localhost/Patient/${id}/_history/1`);
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
    const res = await req('PATCH', `/Patient/${v1.id}`, [{ op: 'replace', path: '/gender', value: 'female' }, { op: 'add', path: '/active', value: true }], {
      'content-type': 'application/json-patch+json',
    });
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
    expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'replace', path: '/id', value: 'other' }], headers), 422, /resourceType or id/);
    expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'add', path: '/gender', value: 12 }], headers), 422);
    expectOutcome(await req('PATCH', `/Patient/${v1.id}`, { op: 'add' }, headers), 400, /array/);
    expectOutcome(await req('PATCH', `/Patient/${v1.id}`, [{ op: 'add', path: '/active', value: true }]), 415, /json-patch/);
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
    const page2 = await req('GET', next.replace('http://localhost', ''));
    expect(page2.json.entry[0].response.etag).toBe('W/"2"');

    const sinceRes = await req('GET', `/${type}/${first.json.id}/_history?_since=${encodeURIComponent(since)}`);
    expect(sinceRes.json.total).toBe(4);
    const later = await req('GET', `/${type}/${first.json.id}/_history?_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
    expect(later.json.total).toBe(0);

    const system = await req('GET', '/_history?_count=1');
    expect(system.json.entry[0].fullUrl).toBe(`http://localhost/${type}/${first.json.id}`);
    expect(system.json.total).toBeGreaterThanOrEqual(4);
    expectOutcome(await req('GET', '/_history?_count=x'), 400);
    expectOutcome(await req('GET', '/_history?name=x'), 400, /_since/);
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
    expect(await count(`Patient?${criteria}`)).toBe(1);
    await req('POST', '/Patient', patient({ identifier: [ident] }));
    expectOutcome(await req('POST', '/Patient', patient({ identifier: [ident] }), { 'if-none-exist': criteria }), 412);
    expect(await count(`Patient?${criteria}`)).toBe(2);
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

  test('conditional delete: one match deleted, none is not an error, several → 412', async () => {
    const ident = uniqueIdentifier();
    const url = `/Patient?identifier=${ident.system}|${ident.value}`;
    const { json } = await req('POST', '/Patient', patient({ identifier: [ident] }));
    expect((await req('DELETE', url)).status).toBe(200);
    expectOutcome(await req('GET', `/Patient/${json.id}`), 410);
    const none = await req('DELETE', url);
    expect(none.status).toBe(200);
    expect(none.json.issue[0].diagnostics).toMatch(/nothing deleted/);
    await req('POST', '/Patient', patient({ identifier: [ident] }));
    await req('POST', '/Patient', patient({ identifier: [ident] }));
    expectOutcome(await req('DELETE', url), 412);
    expect(await count(url.slice(1))).toBe(2);
    expectOutcome(await req('DELETE', '/Patient'), 400, /criterion/);
  });
});

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
    const obs = await req('GET', obsLoc.replace('http://localhost', '').replace(/\/_history\/\d+$/, ''));
    expect(obs.json.subject.reference).toBe(`Patient/${patientId}`);
    const pat = await req('GET', `/Patient/${patientId}`);
    expect(pat.json.managingOrganization.reference).toBe(`Organization/${existing.json.id}`);
  });

  test('a transaction with a failing entry is rolled back entirely', async () => {
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
    expectOutcome(res, 400, /Bundle\.entry\[1\] and Bundle\.entry\[2\]/);
    // Same again without the overlap: now the invalid Observation fails it (422).
    bundle.entry.splice(2, 1);
    const res2 = await req('POST', '/', bundle);
    expectOutcome(res2, 422, /Bundle\.entry\[2\]/);
    expect(await count(`Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
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
    expectOutcome(res, 400, /not the fullUrl of any entry/);
    expect(await count(`Patient?identifier=${ident.system}|${ident.value}`)).toBe(0);
  });

  test('batch entries succeed or fail independently; reads run too', async () => {
    const ident = uniqueIdentifier();
    const { json: existing } = await req('POST', '/Patient', patient());
    const res = await req('POST', '/', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient({ identifier: [ident] }), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 7 }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { request: { method: 'GET', url: `Patient/does-not-exist-${Date.now()}` } },
        { request: { method: 'FETCH', url: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.type).toBe('batch-response');
    const statuses = res.json.entry.map((e: Json) => e.response.status);
    expect(statuses).toEqual(['201 Created', '422 Unprocessable Entity', '200 OK', '404 Not Found', '400 Bad Request']);
    expect(res.json.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(res.json.entry[2].resource.id).toBe(existing.id);
    expect(await count(`Patient?identifier=${ident.system}|${ident.value}`)).toBe(1);
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
    expectOutcome(res, 400, /cannot itself be a batch/);
  });

  test('other bundle types are refused', async () => {
    expectOutcome(await req('POST', '/', { resourceType: 'Bundle', type: 'collection', entry: [] }), 400, /batch and transaction/);
    expectOutcome(await req('POST', '/', patient()), 400, /Bundle/);
  });
});

describe('search', () => {
  let code: string;
  const ids: string[] = [];
  beforeAll(async () => {
    code = randomUUID();
    const { json: subject } = await req('POST', '/Patient', patient({ name: [{ family: 'Ørsted-Müller', given: ['Hans'] }] }));
    for (let i = 0; i < 5; i++) {
      const { json } = await req('POST', '/Observation', {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'urn:fhirguard:code', code }], text: 'Glucose measurement' },
        subject: { reference: `Patient/${subject.id}` },
        effectiveDateTime: `2020-0${i + 1}-15T10:00:00Z`,
        valueQuantity: { value: 10 * (i + 1), unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
        ...(i === 0 ? {} : { performer: [{ reference: `Patient/${subject.id}` }] }),
      });
      ids.push(json.id);
    }
  });

  test('paging with _count follows next links over all matches exactly once', async () => {
    const seen: string[] = [];
    let path: string | undefined = `/Observation?code=urn:fhirguard:code|${code}&_count=2`;
    let pages = 0;
    while (path) {
      const res = await req('GET', path);
      expect(res.json.total).toBe(5);
      seen.push(...res.json.entry.map((e: Json) => e.resource.id));
      pages++;
      const next = res.json.link.find((l: Json) => l.relation === 'next');
      path = next?.url.replace('http://localhost', '');
    }
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual([...ids].sort());
  });

  test('dates, quantities, :missing, :text, :contains, accents, _sort, _elements, POST _search', async () => {
    const q = `Observation?code=${code}`;
    expect(await count(`${q}&date=ge2020-03-01`)).toBe(3);
    expect(await count(`${q}&date=lt2020-03`)).toBe(2);
    expect(await count(`${q}&date=2020-02`)).toBe(1);
    expect(await count(`${q}&date=ge2020-02&date=le2020-04`)).toBe(3);
    expect(await count(`${q}&date=sa2020-04-30`)).toBe(1);
    expect(await count(`${q}&value-quantity=ge30`)).toBe(3);
    expect(await count(`${q}&value-quantity=30||mg/dL`)).toBe(1);
    expect(await count(`${q}&value-quantity=30|http://unitsofmeasure.org|mg/dL`)).toBe(1);
    expect(await count(`${q}&value-quantity=30|http://unitsofmeasure.org|g`)).toBe(0);
    expect(await count(`${q}&value-quantity=lt25,gt45`)).toBe(3);
    expect(await count(`${q}&code:text=glucose`)).toBe(5);
    expect(await count(`${q}&status:not=final`)).toBe(0);
    expect(await count(`${q}&performer:missing=true`)).toBe(1);
    expect(await count(`${q}&performer:missing=false`)).toBe(4);
    expect(await count(`Patient?family=${encodeURIComponent('ØRSTED')}`)).toBeGreaterThanOrEqual(1);
    expect(await count(`Patient?family:contains=muller`)).toBeGreaterThanOrEqual(1);
    expect(await count(`Patient?family:exact=orsted-muller`)).toBe(0);

    const sorted = await req('GET', `/${q}&_sort=-value-quantity&_elements=valueQuantity`);
    expect(sorted.json.entry.map((e: Json) => e.resource.valueQuantity.value)).toEqual([50, 40, 30, 20, 10]);
    expect(sorted.json.entry[0].resource.status).toBeUndefined();
    expect(sorted.json.entry[0].resource.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));

    const byPost = await req('POST', '/Observation/_search', `code=${encodeURIComponent(code)}&date=ge2020-03-01`, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(byPost.status).toBe(200);
    expect(byPost.json.total).toBe(3);
  });

  test('number and uri parameters', async () => {
    const tag = randomUUID();
    for (const p of [0.02, 0.3, 0.75]) {
      await req('POST', '/RiskAssessment', {
        resourceType: 'RiskAssessment',
        status: 'final',
        subject: { reference: 'Patient/x' },
        identifier: [{ system: 'urn:fhirguard:risk', value: tag }],
        prediction: [{ probabilityDecimal: p }],
      });
    }
    const q = `RiskAssessment?identifier=urn:fhirguard:risk|${tag}`;
    expect(await count(`${q}&probability=gt0.25`)).toBe(2);
    expect(await count(`${q}&probability=0.3`)).toBe(1);
    expect(await count(`${q}&probability=0.8`)).toBe(1); // 0.8 means [0.75, 0.85)
    expect(await count(`${q}&probability=le0.02`)).toBe(1);
    expect(await count(`${q}&probability=ap0.3`)).toBe(1);

    const base = `http://fhirguard.test/${tag}`;
    await req('POST', '/ValueSet', { resourceType: 'ValueSet', status: 'active', url: `${base}/vs/one` });
    await req('POST', '/ValueSet', { resourceType: 'ValueSet', status: 'active', url: `${base}/vs/two` });
    expect(await count(`ValueSet?url=${base}/vs/one`)).toBe(1);
    expect(await count(`ValueSet?url=${base}/vs`)).toBe(0);
    expect(await count(`ValueSet?url:below=${base}/vs/`)).toBe(2);
    expect(await count(`ValueSet?url:above=${base}/vs/one/child`)).toBe(1);
  });

  test('_lastUpdated and _sort=_lastUpdated', async () => {
    const res = await req('GET', `/Observation?code=${code}&_sort=-_lastUpdated`);
    const times = res.json.entry.map((e: Json) => Date.parse(e.resource.meta.lastUpdated));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(await count(`Observation?code=${code}&_lastUpdated=gt${new Date(Date.now() + 3_600_000).toISOString().slice(0, 19)}Z`)).toBe(0);
    expect(await count(`Observation?code=${code}&_lastUpdated=ge2020`)).toBe(5);
  });

  test('Patient compartment search', async () => {
    const obs = await req('GET', `/Observation/${ids[0]}`);
    const patientId = obs.json.subject.reference.split('/')[1];
    expect((await req('GET', `/Patient/${patientId}/Observation?_summary=count`)).json.total).toBe(5);
    expect((await req('GET', `/Patient/${patientId}/Observation?date=2020-01`)).json.entry).toHaveLength(1);
    expectOutcome(await req('GET', `/Encounter/${patientId}/Observation`), 404, /Patient compartment/);
  });

  test('refuses what it cannot honour', async () => {
    expectOutcome(await req('GET', '/Observation?nonsense=1'), 400, /unknown search parameter 'nonsense'/);
    expectOutcome(await req('GET', '/Observation?code-value-quantity=x'), 400, /not supported/);
    expectOutcome(await req('GET', '/Observation?code:below=x'), 400, /modifier/);
    expectOutcome(await req('GET', '/Observation?date=yesterday'), 400, /not a date/);
    expectOutcome(await req('GET', '/Observation?value-quantity=lots'), 400, /quantity/);
    expectOutcome(await req('GET', '/Observation?_count=-1'), 400, /_count/);
    expectOutcome(await req('GET', '/Observation?_summary=true'), 400, /_summary/);
    expectOutcome(await req('GET', '/Observation?_include=*'), 400, /wildcard/);
    expectOutcome(await req('GET', '/Observation?_include:iterate=Observation:subject'), 400, /iterat/);
    expectOutcome(await req('GET', '/Observation?_sort=nonsense'), 400);
    expectOutcome(await req('GET', '/Observation?subject.nonsense=1'), 400);
    expectOutcome(await req('GET', '/Observation?status:missing=maybe'), 400);
    const ids = Array.from({ length: 1001 }, (_, i) => `id${i}`).join(',');
    expectOutcome(await req('GET', `/Observation?_id=${ids}`), 400, /at most 1000/);
    const many = Array.from({ length: 30 }, () => `_id=${Array.from({ length: 900 }, (_, i) => `x${i}`).join(',')}`).join('&');
    expectOutcome(await req('POST', '/Observation/_search', many, { 'content-type': 'application/x-www-form-urlencoded' }), 400, /too many/);
  });
});

describe('operations', () => {
  test('$validate at type level: valid and invalid resources, Parameters input', async () => {
    const ok = await req('POST', '/Patient/$validate', patient());
    expect(ok.status).toBe(200);
    expect(ok.json.issue.every((i: Json) => i.severity === 'information' || i.severity === 'warning')).toBe(true);
    const bad = await req('POST', '/Patient/$validate', { resourceType: 'Patient', gender: 5, foo: 1 });
    expect(bad.status).toBe(200);
    const errors = bad.json.issue.filter((i: Json) => i.severity === 'error');
    expect(errors.map((i: Json) => i.expression?.[0]).sort()).toEqual(['Patient.foo', 'Patient.gender']);
    const params = await req('POST', '/Observation/$validate', {
      resourceType: 'Parameters',
      parameter: [{ name: 'resource', resource: { resourceType: 'Observation', status: 'final' } }, { name: 'mode', valueCode: 'create' }],
    });
    expect(params.json.issue.some((i: Json) => i.severity === 'error' && /Observation\.code/.test(i.expression?.[0] ?? ''))).toBe(true);
    expectOutcome(await req('POST', '/Patient/$validate', { resourceType: 'Observation', status: 'final' }), 400);
    // Nothing was stored by validating.
    expect(await count('Patient?gender=5')).toBe(0);
  });

  test('$validate at instance level checks the stored resource, and mode=delete', async () => {
    const { json } = await req('POST', '/Patient', patient());
    const stored = await req('GET', `/Patient/${json.id}/$validate`);
    expect(stored.status).toBe(200);
    expect(stored.json.issue.filter((i: Json) => i.severity === 'error')).toEqual([]);
    const wrongId = await req('POST', `/Patient/${json.id}/$validate`, { ...json, id: 'another' });
    expect(wrongId.json.issue.some((i: Json) => i.severity === 'error' && /another/.test(i.diagnostics))).toBe(true);
    const del = await req('POST', `/Patient/${json.id}/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
    expect(del.status).toBe(200);
    expectOutcome(await req('GET', `/Patient/missing-${Date.now()}/$validate`), 404);
  });

  test('$everything returns the patient, its compartment and what that refers to', async () => {
    const { json: org } = await req('POST', '/Organization', { resourceType: 'Organization', name: 'Clinic' });
    const { json: p } = await req('POST', '/Patient', patient({ managingOrganization: { reference: `Organization/${org.id}` } }));
    const { json: enc } = await req('POST', '/Encounter', {
      resourceType: 'Encounter',
      status: 'finished',
      class: { code: 'AMB' },
      subject: { reference: `Patient/${p.id}` },
      serviceProvider: { reference: `Organization/${org.id}` },
    });
    await req('POST', '/Patient', patient()); // someone else
    const res = await req('GET', `/Patient/${p.id}/$everything`);
    expect(res.status).toBe(200);
    const got = res.json.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort();
    expect(got).toEqual([`Encounter/${enc.id}`, `Organization/${org.id}`, `Patient/${p.id}`].sort());
    expectOutcome(await req('GET', `/Patient/nobody-${Date.now()}/$everything`), 404);
    expectOutcome(await req('GET', `/Observation/x/$everything`), 404, /not supported/);
    expectOutcome(await req('POST', `/$reindex`, {}), 404, /not supported/);
  });
});

describe('refusals are OperationOutcomes with the right status', () => {
  test('bad JSON, wrong type, id mismatch, unknown type, invalid resource', async () => {
    expectOutcome(await req('POST', '/Patient', '{"resourceType": "Patient",'), 400, /not valid JSON/);
    expectOutcome(await req('POST', '/Patient', { resourceType: 'Observation', status: 'final', code: { text: 'x' } }), 400, /does not match/);
    expectOutcome(await req('POST', '/Patient', { resourceType: 'Nonsense' }), 400, /not an R4 resource type/);
    expectOutcome(await req('POST', '/Patient', []), 400);
    expectOutcome(await req('POST', '/Patient'), 400, /body/);
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
    expect(notAllowed.headers.allow).toBe('GET, PUT, PATCH, DELETE');
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
    const big = await req('POST', '/Patient', huge).catch((err: Error) => err);
    if (!(big instanceof Error)) expectOutcome(big, 413);
    expect((await req('GET', '/metadata')).status).toBe(200);
  });
});
