// Expect at the front door (RFC 9110 §10.1.1). fhirguard answers a client's expectation
// itself and never forwards it: `100-continue` gets its interim 100 from the listener and the
// request goes on as any other; any other expectation is refused with 417 as an
// OperationOutcome. Requests with the header used to fail at the upstream client with a 502,
// and enough of them left the write tier unable to serve while /readyz said it was ready: the
// last test here proves the tier keeps serving after more such requests than a member has
// connections.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send } from '../helpers/http-client';

let dir: string;
let proxy: ProxyProcess;
let write: RecordingUpstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-expect-'));
  write = await startRecordingUpstream({ name: 'write' });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [{ name: 'write', upstreams: [write.url], timeoutMs: 30_000 }],
      rules: [{ resources: ['*'], interactions: ['read', 'create', 'update', 'capabilities'], tier: 'write' }],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await write?.close();
  rmSync(dir, { recursive: true, force: true });
});

const patient = JSON.stringify({ resourceType: 'Patient', active: true });

/** A POST that sends its body only once the proxy said 100 Continue, as curl does. */
function postExpectingContinue(body: string): Promise<{ continued: boolean; status: number; json: any }> {
  const url = new URL(proxy.origin);
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/fhir/Patient',
      agent: false,
      headers: { expect: '100-continue', 'content-type': 'application/fhir+json', 'content-length': String(Buffer.byteLength(body)) },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

test('100-continue: the client gets 100, the create is served, the upstream never sees Expect', async () => {
  write.clear();
  const res = await postExpectingContinue(patient);
  expect({ continued: res.continued, status: res.status, type: res.json?.resourceType }).toEqual({ continued: true, status: 201, type: 'Patient' });
  const seen = write.traffic();
  expect(seen).toHaveLength(1);
  expect(seen[0].headers.expect).toBeUndefined();
  expect(seen[0].body.toString()).toBe(patient);
});

test('an expectation fhirguard cannot meet is 417, an OperationOutcome, and never forwarded', async () => {
  write.clear();
  const res = await send(proxy.origin, 'POST', '/fhir/Patient', { fresh: true, body: patient, headers: { expect: 'garbage' } });
  expect({ status: res.status, type: res.json?.resourceType }).toEqual({ status: 417, type: 'OperationOutcome' });
  expect(res.json.issue[0].diagnostics).toMatch(/Expect/);
  expect(res.headers['x-request-id']).toBeTruthy();
  expect(write.traffic()).toHaveLength(0);
});

test('more 100-continue writes than a member has connections leave the tier serving', async () => {
  write.clear();
  for (let i = 0; i < 140; i++) expect((await postExpectingContinue(patient)).status).toBe(201);
  const plain = await send(proxy.origin, 'POST', '/fhir/Patient', { fresh: true, body: patient });
  expect(plain.status).toBe(201);
  expect(write.traffic()).toHaveLength(141);
}, 120_000);
