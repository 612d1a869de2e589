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
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';
import { closeClients, send } from './client';
import { scrape, sum } from './metrics-text';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

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

/** How many requests the proxy has sent to its workers so far. */
async function forwarded(): Promise<number> {
  const { samples } = await scrape(proxy.adminUrl);
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
  expect((await send(proxy.origin, 'GET', '/fhir/metadata')).json.software.name).toBe('fhirguard');
  expect(await forwarded()).toBe(before);
});
