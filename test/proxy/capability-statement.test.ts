// The front door's own CapabilityStatement, through the real proxy in front of real reference
// workers (a read-only worker for the read tier, a writable one for the write tier, one
// database), under a restrictive policy: the statement lists exactly what the policy lets
// through and the serving tier's worker supports. Every interaction, search parameter and
// _include/_revinclude value it lists for the types tried is served; everything it leaves out
// is refused by the front door and never reaches a worker.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSearchParameters, searchParamsOf } from '../../src/fhir/search-parameters';
import { classify } from '../../src/fhir/classify';
import { validateSearch } from '../../src/fhir/validate';
import { loadPolicy } from '../../src/policy';
import { buildCapabilityStatement } from '../../src/proxy/capability-statement';
import { onUpstreams, SHIPPED_POLICY, shippedPolicy } from '../fhir-cases/policies';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';
import { closeClients, send } from '../helpers/http-client';
import { scrape, sum } from '../helpers/metrics-text';
import type { Json } from '../helpers/json';

let dir: string;
let proxy: ProxyProcess;
let reader: WorkerProcess;
let writer: WorkerProcess;
let cs: Json;
let byType: Map<string, Json>;
const VERSION = require('../../package.json').version as string; // eslint-disable-line @typescript-eslint/no-require-imports

beforeAll(async () => {
  loadSearchParameters();
  dir = mkdtempSync(join(tmpdir(), 'fg-capabilities-'));
  const db = join(dir, 'fhir.db');
  writer = await startWorker({ tier: 'write', db });
  reader = await startWorker({ tier: 'read', db, readOnly: true });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [`unix:${reader.socket}`], timeoutMs: 10_000 },
        { name: 'write', upstreams: [`unix:${writer.socket}`], timeoutMs: 10_000 },
      ],
      rules: [
        { resources: ['Patient', 'Observation'], interactions: ['read', 'vread', 'search-type'], tier: 'read' },
        { resources: ['*'], interactions: ['capabilities'], tier: 'read' },
        { resources: ['Patient'], interactions: ['create', 'update'], tier: 'write' },
        { resources: ['Observation'], interactions: ['create'], tier: 'write' },
      ],
    },
  });
  const res = await send(proxy.origin, 'GET', '/fhir/metadata');
  expect(res.status).toBe(200);
  cs = res.json;
  byType = new Map(cs.rest[0].resource.map((r: Json) => [r.type, r]));
}, 120_000);

afterAll(async () => {
  closeClients();
  await stopAllProxies();
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

const codes = (r: Json | undefined): string[] => (r?.interaction ?? []).map((i: Json) => i.code).sort();

/** How many requests `by` (the restrictive proxy unless named) has sent to its workers so far. */
async function forwarded(by: ProxyProcess = proxy): Promise<number> {
  const { samples } = await scrape(by.adminUrl);
  return sum(samples, 'fhirguard_upstream_duration_seconds_count');
}

test('the front door names itself, its version, R4 and JSON', () => {
  expect(cs).toMatchObject({ resourceType: 'CapabilityStatement', kind: 'instance', fhirVersion: '4.0.1', format: ['json'], software: { name: 'fhirguard', version: VERSION } });
  expect(cs.implementation.description).not.toMatch(/have not answered/);
});

test('per type exactly the interactions the policy routes to a tier whose worker supports them', () => {
  expect([...byType.keys()].sort()).toEqual(['Observation', 'Patient']);
  expect(codes(byType.get('Patient'))).toEqual(['create', 'read', 'search-type', 'update', 'vread']);
  expect(codes(byType.get('Observation'))).toEqual(['create', 'read', 'search-type', 'vread']);
  expect(byType.get('Patient')).toMatchObject({ updateCreate: true, conditionalCreate: true, conditionalUpdate: true, conditionalDelete: 'not-supported' });
  // No batch, transaction or system history: the policy allows none of them.
  expect(cs.rest[0].interaction).toBeUndefined();
});

test('includes and revincludes only where every type they reach may be read', () => {
  const obs = byType.get('Observation')!;
  // Observation:patient reaches only Patient; Observation:subject could reach Group, Device or
  // Location, and Observation:performer Practitioner, none of which the policy lets be read.
  expect(obs.searchInclude).toContain('Observation:patient');
  expect(obs.searchInclude).not.toContain('Observation:subject');
  expect(obs.searchInclude).not.toContain('Observation:performer');
  expect(byType.get('Patient')!.searchRevInclude).toContain('Observation:subject');
  expect(byType.get('Patient')!.searchRevInclude).not.toContain('Encounter:subject');
});

test('everything listed for Patient and Observation is served', async () => {
  const created = await send(proxy.origin, 'POST', '/fhir/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Listed' }] } });
  expect(created.status).toBe(201);
  const id = created.json.id;
  const sample: Record<string, string> = { number: '1', date: '2020', string: 'x', token: 'x', reference: 'Patient/1', quantity: '1', uri: 'http://example.org' };
  for (const type of ['Patient', 'Observation']) {
    const before = await forwarded();
    const r = byType.get(type)!;
    const tried: [string, number][] = [];
    const body = { resourceType: type, id, ...(type === 'Observation' ? { status: 'final', code: { text: 'x' } } : {}) };
    for (const code of codes(r)) {
      if (code === 'read') tried.push([code, (await send(proxy.origin, 'GET', `/fhir/${type}/${id}`)).status]);
      if (code === 'vread') tried.push([code, (await send(proxy.origin, 'GET', `/fhir/${type}/${id}/_history/1`)).status]);
      if (code === 'search-type') tried.push([code, (await send(proxy.origin, 'GET', `/fhir/${type}`)).status]);
      if (code === 'create') tried.push([code, (await send(proxy.origin, 'POST', `/fhir/${type}`, { body: { ...body, id: undefined } })).status]);
      if (code === 'update') tried.push([code, (await send(proxy.origin, 'PUT', `/fhir/${type}/${id}`, { body })).status]);
    }
    for (const p of r.searchParam as Json[]) {
      if (!sample[p.type]) continue;
      const value = p.type === 'reference' ? `${searchParamsOf(type).get(p.name)?.targets[0] ?? 'Patient'}/1` : sample[p.type];
      tried.push([`${type}?${p.name}`, (await send(proxy.origin, 'GET', `/fhir/${type}?${p.name}=${encodeURIComponent(value)}`)).status]);
    }
    for (const v of [...r.searchInclude, ...r.searchRevInclude]) {
      const name = r.searchInclude.includes(v) ? '_include' : '_revinclude';
      tried.push([`${type}?${name}=${v}`, (await send(proxy.origin, 'GET', `/fhir/${type}?${name}=${v}`)).status]);
    }
    // Each went to a worker, which served it (a read of an id it does not hold is its 404).
    expect(tried.filter(([, status]) => status >= 300 && status !== 404)).toEqual([]);
    expect(tried.length).toBeGreaterThan(20);
    expect(await forwarded()).toBe(before + tried.length);
  }
}, 120_000);

test('what it leaves out is refused and never reaches a worker', async () => {
  const before = await forwarded();
  const refused: [string, number][] = [];
  const tryIt = async (name: string, method: string, target: string, body?: object): Promise<void> => {
    refused.push([name, (await send(proxy.origin, method, target, body ? { body } : {})).status]);
  };
  await tryIt('Patient delete', 'DELETE', '/fhir/Patient/x');
  await tryIt('Patient history', 'GET', '/fhir/Patient/x/_history');
  await tryIt('Observation update', 'PUT', '/fhir/Observation/x', { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 'x' } });
  await tryIt('Practitioner read', 'GET', '/fhir/Practitioner/x');
  await tryIt('Encounter search', 'GET', '/fhir/Encounter');
  await tryIt('transaction', 'POST', '/fhir', { resourceType: 'Bundle', type: 'transaction', entry: [] });
  const obs = byType.get('Observation')!;
  for (const p of searchParamsOf('Observation').values()) {
    if (p.type !== 'reference' || obs.searchInclude.includes(`Observation:${p.code}`)) continue;
    await tryIt(`_include=Observation:${p.code}`, 'GET', `/fhir/Observation?_include=Observation:${p.code}`);
  }
  expect(refused.length).toBeGreaterThan(8);
  expect(refused.filter(([, status]) => status !== 403)).toEqual([]);
  expect(await forwarded()).toBe(before);
});

test('GET /metadata is answered by the front door, not forwarded', async () => {
  const before = await forwarded();
  const res = await send(proxy.origin, 'GET', '/fhir/metadata');
  expect(res.json.software.name).toBe('fhirguard');
  // Like every answer, it carries the request's id.
  expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(await forwarded()).toBe(before);
});

describe('under the shipped policy', () => {
  let shipped: ProxyProcess;
  let all: Json[];
  let ids: { Patient: string; Observation: string };
  const get = (target: string): Promise<number> => send(shipped.origin, 'GET', `/fhir${target}`).then((r) => r.status);

  beforeAll(async () => {
    const policy = onUpstreams(shippedPolicy(), { read: `unix:${reader.socket}`, write: `unix:${writer.socket}`, ops: `unix:${writer.socket}` });
    shipped = await startProxy({ dir, policy });
    const res = await send(shipped.origin, 'GET', '/fhir/metadata');
    expect(res.status).toBe(200);
    expect(res.json.implementation.description).not.toMatch(/have not answered/);
    all = res.json.rest[0].resource;
    const patient = await send(shipped.origin, 'POST', '/fhir/Patient', { body: { resourceType: 'Patient', name: [{ family: 'Shipped' }] } });
    const observation = await send(shipped.origin, 'POST', '/fhir/Observation', {
      body: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.json.id}` } },
    });
    expect([patient.status, observation.status]).toEqual([201, 201]);
    ids = { Patient: patient.json.id, Observation: observation.json.id };
  }, 60_000);

  /** Sends each request; all must reach a worker and be served (a read of an id it does not hold is its 404). */
  async function expectServed(requests: [string, () => Promise<number>][]): Promise<void> {
    const before = await forwarded(shipped);
    const failed: [string, number][] = [];
    for (const [name, go] of requests) {
      const status = await go();
      if (status >= 300 && status !== 404) failed.push([name, status]);
    }
    expect(failed).toEqual([]);
    expect(await forwarded(shipped)).toBe(before + requests.length);
  }

  test('every R4 type is listed, with the reads, histories and searches the shipped policy allows', () => {
    expect(all).toHaveLength(146);
    for (const r of all) expect([r.type, codes(r)]).toEqual([r.type, ['create', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread']]);
  });

  test("every type's listed reads, histories and type searches reach a worker and are served", async () => {
    const requests: [string, () => Promise<number>][] = [];
    for (const r of all) {
      const id = ids[r.type as keyof typeof ids] ?? 'absent';
      const paths: Record<string, string> = {
        read: `/${r.type}/${id}`,
        vread: `/${r.type}/${id}/_history/1`,
        'history-instance': `/${r.type}/${id}/_history`,
        'history-type': `/${r.type}/_history`,
        'search-type': `/${r.type}`,
      };
      for (const code of codes(r)) if (paths[code]) requests.push([`${r.type} ${code}`, () => get(paths[code])]);
    }
    await expectServed(requests);
  }, 120_000);

  test('every listed search parameter, _include and _revinclude of every type is served', async () => {
    const sample: Record<string, string> = { number: '1', date: '2020', string: 'x', token: 'x', quantity: '1', uri: 'http://example.org' };
    const requests: [string, () => Promise<number>][] = [];
    for (const r of all) {
      for (const p of r.searchParam as Json[]) {
        const def = searchParamsOf(r.type).get(p.name);
        const value = p.type === 'reference' ? `${def?.targets[0] ?? 'Patient'}/1` : sample[p.type];
        if (value === undefined) continue; // composite and special values have shapes of their own
        requests.push([`${r.type}?${p.name}`, () => get(`/${r.type}?${p.name}=${encodeURIComponent(value)}`)]);
      }
      for (const v of r.searchInclude as string[]) requests.push([`${r.type}?_include=${v}`, () => get(`/${r.type}?_include=${encodeURIComponent(v)}`)]);
      for (const v of r.searchRevInclude as string[]) requests.push([`${r.type}?_revinclude=${v}`, () => get(`/${r.type}?_revinclude=${encodeURIComponent(v)}`)]);
    }
    expect(requests.length).toBeGreaterThan(1000);
    await expectServed(requests);
  }, 300_000);

  test('the listed writes, system interactions and operations are served', async () => {
    const cs = (await send(shipped.origin, 'GET', '/fhir/metadata')).json;
    expect(cs.rest[0].interaction.map((i: Json) => i.code).sort()).toEqual(['batch', 'history-system', 'transaction']);
    const patient = { resourceType: 'Patient', id: ids.Patient, name: [{ family: 'Updated' }] };
    const go =
      (method: string, target: string, body?: object, headers: Record<string, string> = {}) =>
      () =>
        send(shipped.origin, method, `/fhir${target}`, { body, headers }).then((r) => r.status);
    await expectServed([
      ['Patient create', go('POST', '/Patient', { resourceType: 'Patient' })],
      ['Patient update', go('PUT', `/Patient/${ids.Patient}`, patient)],
      ['Patient patch', go('PATCH', `/Patient/${ids.Patient}`, [{ op: 'add', path: '/active', value: true }], { 'content-type': 'application/json-patch+json' })],
      ['transaction', go('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }] })],
      ['batch', go('POST', '', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient/${ids.Patient}` } }] })],
      ['history-system', go('GET', '/_history')],
      ['Patient $everything', go('GET', `/Patient/${ids.Patient}/$everything`)],
      ['Patient $validate', go('POST', '/Patient/$validate', { resourceType: 'Patient' })],
    ]);
    const byName = new Map(all.map((r) => [r.type, r]));
    expect(
      byName
        .get('Patient')!
        .operation.map((o: Json) => o.name)
        .sort(),
    ).toEqual(['everything', 'validate']);
  }, 60_000);

  test('delete, which the shipped policy denies, is listed nowhere and refused for every type before any worker', async () => {
    expect(all.filter((r) => codes(r).includes('delete') || r.conditionalDelete !== 'not-supported')).toEqual([]);
    const before = await forwarded(shipped);
    const refused: [string, number][] = [];
    for (const r of all) {
      const res = await send(shipped.origin, 'DELETE', `/fhir/${r.type}/x`);
      if (res.status !== 403 || res.json?.resourceType !== 'OperationOutcome') refused.push([r.type, res.status]);
    }
    expect(refused).toEqual([]);
    expect(await forwarded(shipped)).toBe(before);
  }, 60_000);
});

describe("a backend's own search parameters", () => {
  test('only those the front door validates are listed: a custom one would be refused before reaching it', () => {
    const policy = loadPolicy(SHIPPED_POLICY);
    const patient = {
      type: 'Patient',
      interaction: [{ code: 'read' }, { code: 'search-type' }],
      searchParam: [
        { name: 'name', type: 'string' },
        { name: 'x-custom', type: 'token' },
      ],
      searchInclude: ['Patient:general-practitioner', 'Patient:x-custom', 'Observation:subject'],
      searchRevInclude: ['Observation:subject', 'Observation:x-custom', 'Observation:code', 'Encounter:subject:Group'],
    };
    const backend = { rest: [{ mode: 'server', resource: [patient] }] };
    const st = buildCapabilityStatement({ policy, base: 'http://localhost/fhir', version: '0', backends: new Map(policy.tiers.map((t) => [t.name, backend])), started: new Date(0) }) as Json;
    const p = st.rest[0].resource.find((r: Json) => r.type === 'Patient');
    expect(p.searchParam).toEqual([{ name: 'name', type: 'string' }]);
    expect(p.searchInclude).toEqual(['Patient:general-practitioner']);
    expect(p.searchRevInclude).toEqual(['Observation:subject']);
    // What it leaves out the front door refuses itself.
    for (const q of ['x-custom=1', '_include=Patient:x-custom', '_revinclude=Observation:x-custom']) {
      const interaction = classify({ method: 'GET', path: '/Patient', query: q, headers: {}, base: 'http://localhost/fhir' });
      expect(() => validateSearch(interaction)).toThrow();
    }
  });
});
