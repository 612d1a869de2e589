// Several worker processes on one database file, as `fhirguard up` runs them: write workers
// and read-only workers at once. Readers see every acknowledged write at their next request,
// hold no writable descriptor, and refuse writes; writers share the file without losing or
// failing writes.

import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fhirRequest, startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';
import type { Json } from '../helpers/json';

let dir: string;
let db: string;
let writer: WorkerProcess;
let writer2: WorkerProcess;
let readers: WorkerProcess[];

/** Open descriptors of a process on regular files, with their access mode from fdinfo. */
function fileDescriptors(pid: number): { path: string; accmode: number; flags: string }[] {
  const out: { path: string; accmode: number; flags: string }[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let path: string;
    try {
      path = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!path.startsWith('/') || path.startsWith('/dev/')) continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const flags = /^flags:\s*([0-7]+)/m.exec(info)![1];
    out.push({ path, accmode: parseInt(flags, 8) & 0o3, flags });
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-shared-'));
  db = join(dir, 'fhir.db');
  writer = await startWorker({ tier: 'write', db });
  [writer2, ...readers] = await Promise.all([startWorker({ tier: 'write2', db }), startWorker({ tier: 'read', db, readOnly: true }), startWorker({ tier: 'read', db, readOnly: true })]);
}, 120_000);

afterAll(async () => {
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

test('read-only workers see each committed write at their next request, while they serve searches', async () => {
  let acknowledged = 0;
  let writing = true;
  // Background load on the readers: the count they report never falls behind what was
  // acknowledged before their request started.
  const hammer = async (r: WorkerProcess): Promise<number> => {
    let checks = 0;
    while (writing) {
      const before = acknowledged;
      const res = await fhirRequest(r.socket, 'GET', '/Patient?_summary=count&identifier=urn:fhirguard:shared|');
      expect(res.status).toBe(200);
      expect(res.json.total).toBeGreaterThanOrEqual(before);
      checks++;
    }
    return checks;
  };
  const writes = (async () => {
    for (let i = 0; i < 30; i++) {
      const created = await fhirRequest(writer.socket, 'POST', '/Patient', {
        resourceType: 'Patient',
        identifier: [{ system: 'urn:fhirguard:shared', value: String(i) }],
        gender: 'female',
      });
      expect(created.status).toBe(201);
      acknowledged++;
      for (const r of readers) {
        const read = await fhirRequest(r.socket, 'GET', `/Patient/${created.json.id}`);
        expect(read.status).toBe(200);
        expect(read.json).toEqual(created.json);
      }
      const updated = await fhirRequest(writer.socket, 'PUT', `/Patient/${created.json.id}`, { ...created.json, gender: 'male' });
      expect(updated.status).toBe(200);
      for (const r of readers) {
        const read = await fhirRequest(r.socket, 'GET', `/Patient/${created.json.id}`);
        expect(read.json.meta.versionId).toBe('2');
        expect(read.json.gender).toBe('male');
      }
    }
    writing = false;
  })();
  const [checks] = await Promise.all([Promise.all(readers.map(hammer)), writes]);
  expect(Math.min(...checks)).toBeGreaterThan(0);
  for (const r of readers) {
    const res = await fhirRequest(r.socket, 'GET', '/Patient?identifier=urn:fhirguard:shared|&gender=male&_summary=count');
    expect(res.json.total).toBe(30);
  }
});

test('two write workers share the file: concurrent writes all succeed and versions stay contiguous', async () => {
  const { json: shared } = await fhirRequest(writer.socket, 'POST', '/Basic', { resourceType: 'Basic', code: { text: 'counter' } });
  const perWriter = 25;
  const run = (w: WorkerProcess, tag: string) =>
    Promise.all(
      Array.from({ length: perWriter }, async (_, i) => {
        const c = await fhirRequest(w.socket, 'POST', '/Basic', { resourceType: 'Basic', code: { text: `${tag}-${i}` } });
        expect(c.status).toBe(201);
        const u = await fhirRequest(w.socket, 'PUT', `/Basic/${shared.id}`, { resourceType: 'Basic', id: shared.id, code: { text: `${tag}-${i}` } });
        expect(u.status).toBe(200);
      }),
    );
  await Promise.all([run(writer, 'a'), run(writer2, 'b')]);
  const hist = await fhirRequest(readers[0].socket, 'GET', `/Basic/${shared.id}/_history?_count=1000`);
  const versions = hist.json.entry.map((e: Json) => Number(e.response.etag.replace(/\D/g, '')));
  expect(versions).toEqual(Array.from({ length: 2 * perWriter + 1 }, (_, i) => 2 * perWriter + 1 - i));
  expect((await fhirRequest(readers[1].socket, 'GET', '/Basic?_summary=count')).json.total).toBe(2 * perWriter + 1);
});

test('read-only processes hold no writable descriptor; the write worker does (so the check can tell)', () => {
  for (const r of readers) {
    const fds = fileDescriptors(r.pid);
    const onDb = fds.filter((f) => f.path.startsWith(db));
    expect(onDb.length).toBeGreaterThan(0);
    expect(fds.filter((f) => f.accmode !== 0)).toEqual([]);
  }
  const writerFds = fileDescriptors(writer.pid).filter((f) => f.path === db);
  expect(writerFds.some((f) => f.accmode === 2)).toBe(true);
});

test('read-only workers refuse every write with 405 and say so in /metadata', async () => {
  const r = readers[0];
  const patient = { resourceType: 'Patient', id: 'x' };
  const writes: [string, string, unknown, Record<string, string>?][] = [
    ['POST', '/Patient', patient],
    ['PUT', '/Patient/x', patient],
    ['PATCH', '/Patient/x', [{ op: 'add', path: '/active', value: true }], { 'content-type': 'application/json-patch+json' }],
    ['DELETE', '/Patient/x', undefined],
    ['PUT', '/Patient?identifier=a|b', patient],
    ['DELETE', '/Patient?identifier=a|b', undefined],
    ['POST', '/', { resourceType: 'Bundle', type: 'transaction', entry: [] }],
  ];
  for (const [method, path, body, headers] of writes) {
    const res = await fhirRequest(r.socket, method, path, body, headers);
    expect({ method, path, status: res.status, type: res.json?.resourceType }).toEqual({ method, path, status: 405, type: 'OperationOutcome' });
    expect(res.json.issue[0].diagnostics).toMatch(/read-only/);
    expect(String(res.headers.allow ?? '')).not.toMatch(/POST|PUT|PATCH|DELETE/);
  }
  const meta = await fhirRequest(r.socket, 'GET', '/metadata');
  const patientCaps = meta.json.rest[0].resource.find((x: Json) => x.type === 'Patient');
  expect(patientCaps.interaction.map((i: Json) => i.code).sort()).toEqual(['history-instance', 'history-type', 'read', 'search-type', 'vread']);
  expect(meta.json.rest[0].interaction.map((i: Json) => i.code)).toEqual(['history-system']);
  // Operations that do not write still work.
  const v = await fhirRequest(r.socket, 'POST', '/Patient/$validate', { resourceType: 'Patient' });
  expect(v.status).toBe(200);
});

test('the database directory holds only the database: no journal left, no WAL, no temp files', () => {
  const files = readdirSync(dir).filter((f) => !f.endsWith('.sock'));
  expect(files).toEqual(['fhir.db']);
});

test('a read-only worker does not create a missing database', async () => {
  const missing = join(dir, 'missing.db');
  await expect(startWorker({ db: missing, readOnly: true, readyTimeoutMs: 30_000 })).rejects.toThrow(/exited before it was ready[\s\S]*write worker creates it/);
  expect(existsSync(missing)).toBe(false);
});
