// The proxy in front of the real reference worker: one write worker and one read-only
// worker on one SQLite database, each on its own Unix socket, the shipped policy routing
// reads to the read worker, creates/updates/patches to the write worker and bundles and
// operations to the write worker as the ops tier. Create, read back, search, update with
// If-Match, history, an invalid resource the worker never gets; then the shared FHIR
// interaction cases (test/fhir-cases) and real data through the front door, as the enforced
// system runs them (test/enforce/fhir-suite-enforced.test.ts), here without confinement.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restCases } from '../fhir-cases';
import { frontDoorCases } from '../fhir-cases/front-door';
import { onUpstreams, shippedPolicy, withDeletes } from '../fhir-cases/policies';
import { proxyTarget, type FhirTarget } from '../fhir-cases/target';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { fhirRequest, startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';
import { closeClients, send, type Reply } from '../helpers/http-client';
import type { Json } from '../helpers/json';
import { poll } from '../helpers/poll';

let dir: string;
let proxy: ProxyProcess;
/** The same, with deletes allowed (the shipped policy denies them): the shared cases delete. */
let deleting: ProxyProcess;
let writer: WorkerProcess;
let reader: WorkerProcess;
let target: FhirTarget;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-worker-'));
  const db = join(dir, 'fhir.db');
  // The writer creates the database; the read-only worker opens it afterwards.
  writer = await startWorker({ tier: 'write', db, logLevel: 'debug' });
  reader = await startWorker({ tier: 'read', db, readOnly: true, logLevel: 'debug' });
  const policy = onUpstreams(shippedPolicy(), { read: `unix:${reader.socket}`, write: `unix:${writer.socket}`, ops: `unix:${writer.socket}` });
  [proxy, deleting] = await Promise.all([startProxy({ dir, policy }), startProxy({ dir, policy: withDeletes(policy) })]);
  target = proxyTarget(proxy.fhirUrl, deleting.fhirUrl);
}, 180_000);

afterAll(async () => {
  closeClients();
  for (const p of [proxy, deleting]) if (p) expect(await p.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

const fhir = (method: string, path: string, body?: Buffer | object, headers: Record<string, string> = {}): Promise<Reply> => send(proxy.origin, method, `/fhir${path}`, { body, headers });

/** Worker request log lines (debug) as `METHOD url`. */
function served(w: WorkerProcess): string[] {
  return w
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Json)
    .filter((l) => l.msg === 'request')
    .map((l) => `${l.method} ${l.url}`);
}

async function eventually(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  await poll(what, check, { timeoutMs, intervalMs: 20 });
}

describe('a patient through the front door', () => {
  const identifier = { system: 'urn:fhirguard:proxy-test', value: randomUUID() };
  let id: string;

  test('create goes to the write worker; Location is on the public base', async () => {
    const res = await fhir('POST', '/Patient', {
      resourceType: 'Patient',
      identifier: [identifier],
      name: [{ family: 'Chalmers', given: ['Peter'] }],
      gender: 'male',
      birthDate: '1974-12-25',
    });
    expect({ status: res.status, outcome: res.status === 201 ? undefined : res.json }).toEqual({ status: 201, outcome: undefined });
    const m = new RegExp(`^${proxy.fhirUrl.replace(/[.]/g, '\\.')}/Patient/([A-Za-z0-9.-]+)/_history/1$`).exec(String(res.headers.location));
    expect(m).not.toBeNull();
    id = m![1];
    expect(res.json).toMatchObject({ resourceType: 'Patient', id, meta: { versionId: '1' } });
    await eventually('the write worker logging the create', () => served(writer).includes('POST /Patient'));
    expect(served(reader)).not.toContain('POST /Patient');
  });

  test('read back from the read-only worker', async () => {
    const res = await fhir('GET', `/Patient/${id}`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ resourceType: 'Patient', id, identifier: [identifier], name: [{ family: 'Chalmers' }] });
    expect(res.headers.etag).toBe('W/"1"');
    await eventually('the read worker logging the read', () => served(reader).includes(`GET /Patient/${id}`));
    expect(served(writer)).not.toContain(`GET /Patient/${id}`);
  });

  test('search finds it, with links on the public base', async () => {
    const res = await fhir('GET', `/Patient?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`);
    expect(res.status).toBe(200);
    expect(res.json.total).toBe(1);
    expect(res.json.entry[0].resource.id).toBe(id);
    expect(res.json.entry[0].fullUrl).toBe(`${proxy.fhirUrl}/Patient/${id}`);
    expect(res.json.link.find((l: Json) => l.relation === 'self').url.startsWith(`${proxy.fhirUrl}/Patient?`)).toBe(true);
  });

  test('update with If-Match: the current version succeeds, a stale one gets 412 from the worker', async () => {
    const body = { resourceType: 'Patient', id, identifier: [identifier], name: [{ family: 'Chalmers', given: ['Peter', 'James'] }], gender: 'male', birthDate: '1974-12-25' };
    const ok = await fhir('PUT', `/Patient/${id}`, body, { 'if-match': 'W/"1"' });
    expect({ status: ok.status, outcome: ok.status === 200 ? undefined : ok.json }).toEqual({ status: 200, outcome: undefined });
    expect(ok.json.meta.versionId).toBe('2');
    const stale = await fhir('PUT', `/Patient/${id}`, body, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.json.resourceType).toBe('OperationOutcome');
    const read = await fhir('GET', `/Patient/${id}`);
    expect(read.json.name[0].given).toEqual(['Peter', 'James']);
  });

  test('history has both versions; vread reads the first', async () => {
    const res = await fhir('GET', `/Patient/${id}/_history`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ resourceType: 'Bundle', type: 'history', total: 2 });
    expect(res.json.entry.map((e: Json) => e.resource.meta.versionId).sort()).toEqual(['1', '2']);
    const v1 = await fhir('GET', `/Patient/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.json.name[0].given).toEqual(['Peter']);
  });
});

test('an invalid resource is refused with 422 and never reaches the worker', async () => {
  const identifier = { system: 'urn:fhirguard:proxy-test', value: randomUUID() };
  const before = served(writer).length;
  const res = await fhir('POST', '/Patient', { resourceType: 'Patient', identifier: [identifier], birthDate: '25/12/1974' });
  expect(res.status).toBe(422);
  expect(res.json.resourceType).toBe('OperationOutcome');
  expect(res.json.issue.flatMap((i: Json) => i.expression ?? [])).toContain('Patient.birthDate');
  const query = `/Patient?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`;
  const viaProxy = await fhir('GET', query);
  expect(viaProxy.json.total).toBe(0);
  // Asked directly, the write worker has nothing under that identifier either, and logged no create.
  const direct = await fhirRequest(writer.socket, 'GET', query);
  expect(direct.json.total).toBe(0);
  expect(
    served(writer)
      .slice(before)
      .filter((l) => l.startsWith('POST')),
  ).toEqual([]);
});

restCases(() => target);
frontDoorCases(() => target);
