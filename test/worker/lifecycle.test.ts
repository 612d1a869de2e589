// A worker's life: writes acknowledged with 2xx survive kill -9; SIGTERM lets in-flight
// requests finish and exits 0; a stale socket file left by a killed worker is replaced, while
// any other file at the socket path is left alone.

import { connect } from 'node:net';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fhirRequest, startWorker, stopAllWorkers } from '../helpers/worker-process';
import type { Json } from '../helpers/json';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fg-life-'));
});

afterAll(async () => {
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

test('every kind of acknowledged write survives kill -9 right after its 2xx', async () => {
  const db = join(dir, 'durable.db');
  const socket = join(dir, 'durable.sock');
  const write = async (act: (s: string) => Promise<void>): Promise<void> => {
    const w = await startWorker({ db, socket });
    await act(w.socket);
    await w.kill9();
    // The killed worker's socket file stays behind; the next start must replace it.
    expect(lstatSync(socket).isSocket()).toBe(true);
  };
  let created: Json = {};
  let updated: Json = {};
  let deletedId = '';
  let txIds: string[] = [];
  await write(async (s) => {
    const res = await fhirRequest(s, 'POST', '/Patient', { resourceType: 'Patient', gender: 'female', birthDate: '1970-01-01' });
    expect(res.status).toBe(201);
    created = res.json;
  });
  await write(async (s) => {
    const res = await fhirRequest(s, 'PUT', `/Patient/${created.id}`, { ...created, gender: 'male' });
    expect(res.status).toBe(200);
    updated = res.json;
  });
  await write(async (s) => {
    const { json } = await fhirRequest(s, 'POST', '/Patient', { resourceType: 'Patient' });
    deletedId = json.id;
    expect((await fhirRequest(s, 'DELETE', `/Patient/${deletedId}`)).status).toBe(200);
  });
  await write(async (s) => {
    const res = await fhirRequest(s, 'POST', '/', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: Array.from({ length: 20 }, (_, i) => ({
        fullUrl: `urn:uuid:00000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`,
        resource: { resourceType: 'Basic', code: { text: `tx-${i}` } },
        request: { method: 'POST', url: 'Basic' },
      })),
    });
    expect(res.status).toBe(200);
    txIds = res.json.entry.map((e: Json) => /Basic\/([^/]+)\//.exec(e.response.location)![1]);
  });

  const w = await startWorker({ db, socket });
  const read = await fhirRequest(w.socket, 'GET', `/Patient/${created.id}`);
  expect(read.status).toBe(200);
  expect(read.json).toEqual(updated);
  expect((await fhirRequest(w.socket, 'GET', `/Patient/${created.id}/_history/1`)).json).toEqual(created);
  expect((await fhirRequest(w.socket, 'GET', `/Patient/${deletedId}`)).status).toBe(410);
  const basics = await fhirRequest(w.socket, 'GET', `/Basic?_id=${txIds.join(',')}&_summary=count`);
  expect(basics.json.total).toBe(20);
  await w.stop();
});

/** Sends a request's head with Expect: 100-continue and resolves once the server answered 100. */
function startRequest(socket: string, method: string, path: string, body: string): Promise<{ finish(): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let received = '';
    let continued = false;
    let done: ((text: string) => void) | undefined;
    conn.setEncoding('utf8');
    conn.on('error', reject);
    conn.on('data', (chunk: string) => {
      received += chunk;
      if (!continued && received.includes('100 Continue\r\n\r\n')) {
        continued = true;
        received = received.slice(received.indexOf('100 Continue\r\n\r\n') + '100 Continue\r\n\r\n'.length);
        resolve({
          finish: () =>
            new Promise<string>((res) => {
              done = res;
              conn.end(body);
            }),
        });
      }
    });
    conn.on('end', () => done?.(received));
    conn.write(
      `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/fhir+json\r\n` + `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
  });
}

test('SIGTERM: the in-flight request completes, the worker exits 0 and removes its socket', async () => {
  const db = join(dir, 'term.db');
  const w = await startWorker({ db });
  const body = JSON.stringify({ resourceType: 'Patient', gender: 'other' });
  // The server has parsed the request head (it sent 100 Continue): the request is in flight.
  const inFlight = await startRequest(w.socket, 'POST', '/Patient', body);
  w.child.kill('SIGTERM');
  const response = await inFlight.finish();
  expect(response).toMatch(/^HTTP\/1\.1 201 Created/);
  const id = /"id":"([^"]+)"/.exec(response)![1];
  const { code, signal } = await w.exited;
  expect({ code, signal }).toEqual({ code: 0, signal: null });
  expect(existsSync(w.socket)).toBe(false);
  expect(w.stderr()).toMatch(/"msg":"worker stopped"/);

  const again = await startWorker({ db });
  expect((await fhirRequest(again.socket, 'GET', `/Patient/${id}`)).status).toBe(200);
  expect(await again.stop()).toEqual({ code: 0, signal: null });
});

test('a file at the socket path that is not a socket is left alone and the start fails', async () => {
  const socket = join(dir, 'not-a-socket');
  writeFileSync(socket, 'keep me');
  await expect(startWorker({ db: join(dir, 'other.db'), socket, readyTimeoutMs: 30_000 })).rejects.toThrow(/not a socket/);
  expect(readFileSync(socket, 'utf8')).toBe('keep me');
});

test('the socket is group-accessible only (0660)', async () => {
  const w = await startWorker({ db: join(dir, 'mode.db') });
  expect(lstatSync(w.socket).mode & 0o777).toBe(0o660);
  await w.stop();
});
