// Forwarding through the real proxy process to real recording upstreams on loopback, one
// per tier: every FHIR interaction kind reaches the tier the policy names, with the method,
// path (below the FHIR base), query and body bytes the client sent, X-Forwarded-* and the
// request id set, hop-by-hop headers stripped both ways; the client gets the upstream's
// status and body, with Location rewritten to the public base.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send, type Reply } from '../helpers/http-client';
import type { Json } from '../helpers/json';
import { poll } from '../helpers/poll';

type TierName = 'read' | 'write' | 'ops';

let dir: string;
let proxy: ProxyProcess;
const up = {} as Record<TierName, RecordingUpstream>;
let seq = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-fwd-'));
  for (const t of ['read', 'write', 'ops'] as const) up[t] = await startRecordingUpstream({ name: t });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [up.read.url], timeoutMs: 20_000 },
        { name: 'write', upstreams: [up.write.url], timeoutMs: 20_000 },
        { name: 'ops', upstreams: [up.ops.url], timeoutMs: 20_000 },
      ],
      rules: [
        {
          resources: ['*'],
          interactions: ['read', 'vread', 'search-type', 'search-system', 'history-instance', 'history-type', 'history-system', 'capabilities'],
          tier: 'read',
        },
        { resources: ['*'], interactions: ['create', 'update', 'patch'], tier: 'write' },
        { resources: ['Observation'], interactions: ['delete'], tier: 'write' },
        { resources: ['*'], interactions: ['batch', 'transaction'], tier: 'ops' },
        { resources: ['*'], interactions: ['operation'], operations: ['$validate', '$everything', '$meta'], tier: 'ops' },
        { resources: ['*'], interactions: ['delete'], deny: true },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) {
    const exit = await proxy.stop();
    expect(exit).toEqual({ code: 0, signal: null }); // SIGTERM: a clean stop
  }
  await stopAllProxies();
  for (const u of Object.values(up)) await u.close();
  rmSync(dir, { recursive: true, force: true });
});

const patient = { resourceType: 'Patient', name: [{ family: 'Chalmers', given: ['Peter', 'James'] }], gender: 'male', birthDate: '1974-12-25' };
const observation = {
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body Weight' }] },
  subject: { reference: 'Patient/example' },
  valueQuantity: { value: 67.1, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
};

interface Case {
  name: string;
  method: string;
  /** Path and query below the FHIR base, as the client writes it. */
  target: string;
  body?: Buffer;
  headers?: Record<string, string>;
  tier: TierName;
  status: number;
  /** Location the client must see (public base), when the upstream sends one. */
  location?: string;
}

/** Bytes as a client would send them: not necessarily JSON.stringify's spacing. */
const raw = (value: unknown, indent = 2): Buffer => Buffer.from(JSON.stringify(value, null, indent) + '\n');

const bundle = (type: 'batch' | 'transaction'): Json => ({
  resourceType: 'Bundle',
  type,
  entry: [
    { request: { method: 'GET', url: 'Patient/example' } },
    { fullUrl: 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a', resource: patient, request: { method: 'POST', url: 'Patient' } },
    { resource: { ...observation, subject: { reference: 'urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a' } }, request: { method: 'POST', url: 'Observation' } },
  ],
});

const CASES: Case[] = [
  { name: 'read', method: 'GET', target: '/Patient/example', tier: 'read', status: 200 },
  { name: 'read (HEAD)', method: 'HEAD', target: '/Patient/example', tier: 'read', status: 200 },
  { name: 'vread', method: 'GET', target: '/Patient/example/_history/2', tier: 'read', status: 200 },
  { name: 'history-instance', method: 'GET', target: '/Patient/example/_history?_count=5', tier: 'read', status: 200 },
  { name: 'history-type', method: 'GET', target: '/Patient/_history?_since=2024-01-01T00:00:00Z', tier: 'read', status: 200 },
  { name: 'history-system', method: 'GET', target: '/_history', tier: 'read', status: 200 },
  {
    name: 'search-type (GET, repeated and encoded parameters)',
    method: 'GET',
    target: '/Patient?family=Chalmers&birthdate=ge1970-01-01&birthdate=le1980-12-31&name%3Aexact=Peter%20James',
    tier: 'read',
    status: 200,
  },
  { name: 'search-system (GET)', method: 'GET', target: '/?_id=example', tier: 'read', status: 200 },
  {
    name: 'search-type (POST _search, form body and URL parameters)',
    method: 'POST',
    target: '/Observation/_search?_count=10',
    body: Buffer.from('code=http%3A%2F%2Floinc.org%7C29463-7&subject=Patient%2Fexample'),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    tier: 'read',
    status: 200,
  },
  { name: 'compartment search (type)', method: 'GET', target: '/Patient/example/Observation?code=29463-7', tier: 'read', status: 200 },
  { name: 'compartment search (*)', method: 'GET', target: '/Patient/example/*', tier: 'read', status: 200 },
  {
    name: 'create',
    method: 'POST',
    target: '/Patient',
    body: raw(patient),
    tier: 'write',
    status: 201,
    location: '/Patient/new-1/_history/1',
  },
  {
    name: 'conditional create (If-None-Exist)',
    method: 'POST',
    target: '/Patient',
    body: raw({ ...patient, identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }] }, 0),
    headers: { 'if-none-exist': 'identifier=urn:oid:1.2.36.146.595.217.0.1|12345' },
    tier: 'write',
    status: 201,
    location: '/Patient/new-1/_history/1',
  },
  {
    name: 'update with If-Match',
    method: 'PUT',
    target: '/Patient/example',
    body: raw({ ...patient, id: 'example' }),
    headers: { 'if-match': 'W/"1"' },
    tier: 'write',
    status: 200,
    location: '/Patient/example/_history/1',
  },
  {
    name: 'conditional update',
    method: 'PUT',
    target: '/Patient?identifier=urn:oid:1.2.36.146.595.217.0.1%7C12345',
    body: raw(patient),
    tier: 'write',
    status: 200,
    location: '/Patient/new-1/_history/1',
  },
  {
    name: 'patch (JSON Patch)',
    method: 'PATCH',
    target: '/Patient/example',
    body: raw([{ op: 'replace', path: '/birthDate', value: '1974-12-26' }]),
    headers: { 'content-type': 'application/json-patch+json' },
    tier: 'write',
    status: 200,
    location: '/Patient/example/_history/1',
  },
  {
    name: 'patch (FHIRPath Patch)',
    method: 'PATCH',
    target: '/Patient/example',
    body: raw({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'replace' },
            { name: 'path', valueString: 'Patient.birthDate' },
            { name: 'value', valueDate: '1974-12-26' },
          ],
        },
      ],
    }),
    tier: 'write',
    status: 200,
    location: '/Patient/example/_history/1',
  },
  { name: 'delete (allowed for Observation)', method: 'DELETE', target: '/Observation/obs-1', tier: 'write', status: 204 },
  { name: 'conditional delete', method: 'DELETE', target: '/Observation?code=http://loinc.org%7C29463-7', tier: 'write', status: 204 },
  { name: 'batch', method: 'POST', target: '', body: raw(bundle('batch')), tier: 'ops', status: 200 },
  { name: 'transaction', method: 'POST', target: '/', body: raw(bundle('transaction'), 0), tier: 'ops', status: 200 },
  { name: 'operation (system level)', method: 'GET', target: '/$meta', tier: 'ops', status: 200 },
  {
    name: 'operation (type level)',
    method: 'POST',
    target: '/Patient/$validate',
    body: raw({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }] }),
    tier: 'ops',
    status: 200,
  },
  { name: 'operation (instance level)', method: 'GET', target: '/Patient/example/$everything?_count=50', tier: 'ops', status: 200 },
];

function only(tier: TierName): RecordedRequest {
  for (const t of Object.keys(up) as TierName[]) {
    if (t !== tier) expect({ tier: t, seen: up[t].traffic().map((r) => `${r.method} ${r.url}`) }).toEqual({ tier: t, seen: [] });
  }
  const seen = up[tier].traffic();
  expect(seen).toHaveLength(1);
  return seen[0];
}

function clearAll(): void {
  for (const u of Object.values(up)) u.clear();
}

describe('every interaction kind is forwarded to its tier unchanged', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    clearAll();
    const requestId = `fwd-${++seq}-${c.name.replace(/[^A-Za-z0-9]+/g, '-')}`.slice(0, 100);
    const res = await send(proxy.origin, c.method, `/fhir${c.target}`, {
      headers: { 'x-request-id': requestId, ...c.headers },
      body: c.body,
    });
    // The body is shown when the status is wrong: it is the OperationOutcome saying why.
    expect({ status: res.status, outcome: res.status === c.status ? undefined : res.json }).toEqual({ status: c.status, outcome: undefined });
    const got = only(c.tier);

    // What the upstream received: the same interaction, below its own base.
    const q = c.target.indexOf('?');
    const path = q < 0 ? c.target : c.target.slice(0, q);
    expect(got.method).toBe(c.method);
    expect(got.path).toBe(path === '' ? '/' : path);
    expect(got.query).toBe(q < 0 ? '' : c.target.slice(q + 1));
    if (c.body) {
      expect(got.body.equals(c.body)).toBe(true);
      expect(got.headers['content-length']).toBe(String(c.body.length));
      expect(got.headers['content-type']).toBe(c.headers?.['content-type'] ?? 'application/fhir+json');
    } else {
      expect(got.body.length).toBe(0);
    }
    for (const [name, value] of Object.entries(c.headers ?? {})) expect(got.headers[name]).toBe(value);
    expect(got.headers['x-request-id']).toBe(requestId);
    expect(got.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(got.headers['x-forwarded-proto']).toBe('http');
    expect(got.headers['x-forwarded-host']).toBe(proxy.host);
    expect(got.headers['x-forwarded-prefix']).toBe('/fhir');
    expect(got.headers.host).toBe(new URL(up[c.tier].url).host);

    // What the client got: the upstream's answer.
    expect(res.headers['x-request-id']).toBe(requestId);
    expect(res.headers['x-served-by']).toBe(c.tier);
    if (c.method === 'HEAD' || c.status === 204) {
      expect(res.body.length).toBe(0);
    } else {
      expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
      expect(res.json).toBeDefined();
      if (c.name === 'read') expect(res.json).toMatchObject({ resourceType: 'Patient', id: 'example' });
    }
    if (c.location) expect(res.headers.location).toBe(`${proxy.origin}/fhir${c.location}`);
    else expect(res.headers.location).toBeUndefined();
  });
});

describe('headers at the front door', () => {
  let res: Reply;
  let got: RecordedRequest;

  beforeAll(async () => {
    clearAll();
    res = await send(proxy.origin, 'POST', '/fhir/Patient', {
      fresh: true,
      body: raw(patient),
      headers: {
        host: 'fhir.example.org',
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-host': 'spoofed.example.net',
        connection: 'keep-alive, x-client-hop',
        'x-client-hop': 'connection-scoped',
        'keep-alive': 'timeout=5, max=1000',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'proxy-connection': 'keep-alive',
        authorization: 'Bearer end-to-end',
        'x-end-to-end': 'kept',
      },
    });
    got = only('write');
  });

  test('hop-by-hop request headers, and those the client lists in Connection, do not reach the upstream', () => {
    expect(res.status).toBe(201);
    for (const h of ['x-client-hop', 'te', 'proxy-authorization', 'proxy-connection']) expect({ h, value: got.headers[h] }).toEqual({ h, value: undefined });
    expect(got.headers['keep-alive']).not.toBe('timeout=5, max=1000');
    expect(String(got.headers.connection ?? '')).not.toMatch(/x-client-hop/);
  });

  test('end-to-end request headers are forwarded', () => {
    expect(got.headers.authorization).toBe('Bearer end-to-end');
    expect(got.headers['x-end-to-end']).toBe('kept');
  });

  test("X-Forwarded-For appends the peer to what the client sent; X-Forwarded-Host is the Host the client used, never the client's own", () => {
    expect(got.headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(got.headers['x-forwarded-host']).toBe('fhir.example.org');
  });

  test('Location is rewritten to the public base the client used', () => {
    expect(res.headers.location).toBe('http://fhir.example.org/fhir/Patient/new-1/_history/1');
  });

  test("the upstream's hop-by-hop response headers do not reach the client", () => {
    expect(res.headers['x-served-by']).toBe('write'); // an end-to-end header passes
    expect(res.headers['x-upstream-hop']).toBeUndefined();
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers['keep-alive']).not.toBe('timeout=61, max=997');
    expect(String(res.headers.connection ?? '')).not.toMatch(/x-upstream-hop/);
  });

  test('a request id is generated when the client sends none, and the same one goes upstream and back', async () => {
    clearAll();
    const r = await send(proxy.origin, 'GET', '/fhir/Patient/example');
    expect(r.status).toBe(200);
    const id = r.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(only('read').headers['x-request-id']).toBe(id);
  });

  test('an unsafe client request id is replaced, not forwarded', async () => {
    clearAll();
    const r = await send(proxy.origin, 'GET', '/fhir/Patient/example', { headers: { 'x-request-id': 'evil id\twith spaces' } });
    expect(r.status).toBe(200);
    const forwarded = only('read').headers['x-request-id'];
    expect(forwarded).not.toMatch(/evil/);
    expect(r.headers['x-request-id']).toBe(forwarded);
  });

  test('the request id is in the proxy log line of that request', async () => {
    const r = await send(proxy.origin, 'GET', '/fhir/Patient/example', { headers: { 'x-request-id': 'log-me-1234' } });
    expect(r.status).toBe(200);
    await waitUntil(() => proxy.logs().some((l) => l.msg === 'request' && l.reqId === 'log-me-1234'));
    const line = proxy.logs().find((l) => l.msg === 'request' && l.reqId === 'log-me-1234')!;
    expect(line).toMatchObject({ tier: 'read', interaction: 'read', type: 'Patient', status: 200 });
  });

  test('a GET with a body reaches the upstream without it', async () => {
    clearAll();
    const r = await send(proxy.origin, 'GET', '/fhir/Patient/example', { body: raw(patient), headers: { 'content-type': 'application/fhir+json' } });
    expect(r.status).toBe(200);
    const got = only('read');
    expect(got.body.length).toBe(0);
    expect(got.headers['content-length'] ?? '0').toBe('0');
  });
});

describe('responses are streamed', () => {
  test('the client gets the first bytes of a response while the upstream is still sending it', async () => {
    clearAll();
    let release!: () => void;
    up.read.setBehaviour({ kind: 'hold', release: new Promise<void>((r) => (release = r)) });
    try {
      const first = await new Promise<{ status: number; chunk: string; rest: Promise<string> }>((resolve, reject) => {
        const req = http.get(`${proxy.origin}/fhir/Patient?family=Streamed`, { agent: false }, (res) => {
          res.setEncoding('utf8');
          let all = '';
          const rest = new Promise<string>((done) => res.on('end', () => done(all)));
          res.once('data', (chunk: string) => {
            all += chunk;
            res.on('data', (c: string) => (all += c));
            resolve({ status: res.statusCode ?? 0, chunk, rest });
          });
        });
        req.on('error', reject);
      });
      // The upstream has not finished: a buffering proxy could not have sent anything yet.
      expect(first.status).toBe(200);
      expect(first.chunk).toContain('"type":"searchset"');
      release();
      expect(JSON.parse(await first.rest)).toEqual({ resourceType: 'Bundle', type: 'searchset', entry: [] });
    } finally {
      up.read.setBehaviour({ kind: 'normal' });
      release?.();
    }
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  await poll('the condition', cond, { timeoutMs, intervalMs: 20 });
}
