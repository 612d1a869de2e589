// The front door at the HTTP level, through the real proxy with a recording upstream:
// headers and parameters that would make a server do something other than what fhirguard
// decided never pass; coded bodies are refused; requests Node's parser refuses before any
// route runs (smuggling shapes, oversized headers, a missing Host) are OperationOutcomes with
// an X-Request-Id like every other refusal; connections after an Upgrade request or with
// unframed bytes after a request are answered and closed, never left hanging; slow clients
// are cut off by the header and request timeouts. Every refusal proves the upstream never
// saw the request.

import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send } from '../helpers/http-client';
import { scrapeUntil, value } from '../helpers/metrics-text';
import { parseResponses, rawExchange, type ParsedResponse } from './raw-socket';

let dir: string;
let proxy: ProxyProcess;
let up: RecordingUpstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-hygiene-'));
  up = await startRecordingUpstream({ name: 'up' });
  proxy = await startProxy({
    dir,
    args: ['--headers-timeout', '1000', '--request-timeout', '2000'],
    policy: {
      tiers: [{ name: 'all', upstreams: [up.url], timeoutMs: 30_000 }],
      rules: [
        { resources: ['Practitioner'], interactions: ['read', 'search-type'], deny: true },
        { resources: ['*'], interactions: ['read', 'search-type', 'create', 'update', 'delete', 'capabilities'], tier: 'all' },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

const patient = JSON.stringify({ resourceType: 'Patient', active: true });

function expectOutcome(r: ParsedResponse | undefined, status: number, diagnostics: RegExp): void {
  expect(r?.status).toBe(status);
  expect(r?.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(r?.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  const json = JSON.parse(r?.body ?? '{}');
  expect(json.resourceType).toBe('OperationOutcome');
  expect(json.issue.map((i: { diagnostics: string }) => i.diagnostics).join(' | ')).toMatch(diagnostics);
}

describe('what never passes the front door', () => {
  const overrides = {
    'x-http-method-override': 'DELETE',
    'x-http-method': 'PATCH',
    'x-method-override': 'DELETE',
    'x-original-url': '/Practitioner/1',
    'x-rewrite-url': '/Practitioner/1',
    forwarded: 'for=10.0.0.1;host=evil.example;proto=https',
    'x-forwarded-port': '6666',
    'x-forwarded-ssl': 'on',
    'x-forwarded-server': 'evil.example',
    'x-real-ip': '10.0.0.1',
    'front-end-https': 'on',
  };

  test.each(['GET', 'POST'])('method, path and forwarding overrides are stripped from a %s', async (method) => {
    up.clear();
    const res = await send(proxy.origin, method, method === 'GET' ? '/fhir/Patient/1' : '/fhir/Patient', { headers: overrides, ...(method === 'POST' ? { body: patient } : {}) });
    expect(res.status).toBe(method === 'GET' ? 200 : 201);
    const seen = up.traffic();
    expect(seen).toHaveLength(1);
    for (const name of Object.keys(overrides)) expect({ name, value: seen[0].headers[name] }).toEqual({ name, value: undefined });
  });

  test.each([
    ['create', 'POST', '/fhir/Patient?_method=DELETE'],
    ['read', 'GET', '/fhir/Patient/1?_method=DELETE'],
    ['update', 'PUT', '/fhir/Patient/1?_method=PATCH'],
    ['delete', 'DELETE', '/fhir/Patient/1?_method=GET'],
  ])('a _method parameter on a %s is refused', async (_kind, method, target) => {
    up.clear();
    const body = method === 'POST' || method === 'PUT' ? JSON.stringify({ resourceType: 'Patient', id: '1' }) : undefined;
    const res = await send(proxy.origin, method, target, body ? { body } : {});
    expect({ status: res.status, type: res.json?.resourceType }).toEqual({ status: 400, type: 'OperationOutcome' });
    expect(res.json.issue[0].diagnostics).toMatch(/_method/);
    expect(up.traffic()).toHaveLength(0);
  });

  test.each(['gzip', 'deflate', 'br', 'x-anything'])('a body with Content-Encoding %s is refused with 415', async (coding) => {
    up.clear();
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: gzipSync(patient), headers: { 'content-encoding': coding } });
    expect({ status: res.status, type: res.json?.resourceType }).toEqual({ status: 415, type: 'OperationOutcome' });
    expect(res.json.issue[0].diagnostics).toMatch(/Content-Encoding/);
    expect(up.traffic()).toHaveLength(0);
  });

  test('Content-Encoding identity is the uncoded body and passes', async () => {
    up.clear();
    expect((await send(proxy.origin, 'POST', '/fhir/Patient', { body: patient, headers: { 'content-encoding': 'identity' } })).status).toBe(201);
    expect(up.traffic()).toHaveLength(1);
  });
});

describe('refusals below the routes are OperationOutcomes', () => {
  test('a request without Host', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, 'GET /fhir/Patient/1 HTTP/1.1\r\nAccept: application/fhir+json\r\n\r\n', { waitMs: 1000 });
    expectOutcome(parseResponses(r.text)[0], 400, /Host/);
    expect(up.traffic()).toHaveLength(0);
  });

  test.each([
    [
      'Content-Length with Transfer-Encoding',
      `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: ${patient.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    ['two different Content-Lengths', `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 3\r\nContent-Length: ${patient.length}\r\n\r\n${patient}`],
    ['an obfuscated Transfer-Encoding', `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`],
    ['a bad chunk size', `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${patient}\r\n0\r\n\r\n`],
    ['a space before the colon', 'GET /fhir/Patient/1 HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['a bare LF line end', 'GET /fhir/Patient/1 HTTP/1.1\nHost: x\n\n'],
  ])('%s: 400, closed, never forwarded', async (_name, bytes) => {
    up.clear();
    const r = await rawExchange(proxy.origin, bytes);
    expectOutcome(parseResponses(r.text)[0], 400, /not well-formed HTTP/);
    expect(r.closed).toBe(true);
    expect(up.traffic()).toHaveLength(0);
  });

  test('CONNECT: 405, closed, never forwarded', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, 'CONNECT /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n\r\n');
    expectOutcome(parseResponses(r.text)[0], 405, /CONNECT/);
    expect(r.closed).toBe(true);
    expect(up.traffic()).toHaveLength(0);
  });

  test('headers past 15 KiB: 431, so what is forwarded fits the 16 KiB servers accept', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, `GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(15_500)}\r\n\r\n`);
    expectOutcome(parseResponses(r.text)[0], 431, /15 KiB/);
    expect(r.closed).toBe(true);
    expect(up.traffic()).toHaveLength(0);
  });

  test('a request line without an HTTP version (HTTP/0.9): 505, never forwarded', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, 'GET /fhir/Patient/1\r\n\r\n');
    expectOutcome(parseResponses(r.text)[0], 505, /HTTP\/0\.9 is not supported/);
    expect(up.traffic()).toHaveLength(0);
  });

  test.each([
    ['two Host headers', 'Host: a.example\r\nHost: b.example\r\n', /more than one Host/],
    ['a Host that is no host', 'Host: a.example/evil?\r\n', /not a host name/],
    ['a Host with a space', 'Host: a b\r\n', /not a host name/],
  ])('%s: 400, never forwarded', async (_name, host, diagnostics) => {
    up.clear();
    const r = await rawExchange(proxy.origin, `GET /fhir/Patient/1 HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    expectOutcome(parseResponses(r.text)[0], 400, diagnostics);
    expect(up.traffic()).toHaveLength(0);
  });

  test('hosts as names, IPv4 and IPv6 addresses, with ports, pass', async () => {
    up.clear();
    for (const host of ['fhir.example.org', 'fhir.example.org:8443', '10.0.0.1:80', '[::1]:8080', 'localhost']) {
      const r = await rawExchange(proxy.origin, `GET /fhir/Patient/1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect({ host, status: parseResponses(r.text)[0]?.status }).toEqual({ host, status: 200 });
    }
    expect(up.traffic().map((t) => t.headers['x-forwarded-host'])).toEqual(['fhir.example.org', 'fhir.example.org:8443', '10.0.0.1:80', '[::1]:8080', 'localhost']);
  });

  test('more than 90 header fields: 431, never forwarded; 90 pass', async () => {
    up.clear();
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('');
    // Host and Connection are two of the fields.
    const over = await rawExchange(proxy.origin, `GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields(89)}\r\n`);
    expectOutcome(parseResponses(over.text)[0], 431, /91 header fields; the front door accepts at most 90/);
    expect(up.traffic()).toHaveLength(0);
    const within = await rawExchange(proxy.origin, `GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${fields(88)}\r\n`);
    expect(parseResponses(within.text)[0]?.status).toBe(200);
    expect(up.traffic()).toHaveLength(1);
  });

  test('they are counted with the other refusals', async () => {
    const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_refusals_total', { reason: 'malformed-http' }) >= 6);
    expect(value(samples, 'fhirguard_refusals_total', { reason: 'headers-too-large' })).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'fhirguard_refusals_total', { reason: 'missing-host' })).toBeGreaterThanOrEqual(1);
    for (const reason of ['http-version', 'duplicate-host', 'bad-host', 'too-many-headers']) {
      expect({ reason, counted: value(samples, 'fhirguard_refusals_total', { reason }) >= 1 }).toEqual({ reason, counted: true });
    }
  });
});

describe('connections', () => {
  test.each([
    ['a malformed follow-up', 'NOT HTTP AT ALL\r\n\r\n'],
    ['a denied read', 'GET /fhir/Practitioner/1 HTTP/1.1\r\nHost: x\r\n\r\n'],
  ])('after an Upgrade request, %s: the answer closes the connection at once, nothing after it is forwarded', async (_name, follow) => {
    up.clear();
    for (const sameWrite of [true, false]) {
      const upgrade = 'GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n';
      // Well within the header timeout (1 s here), which used to be what ended such a connection.
      const r = sameWrite ? await rawExchange(proxy.origin, upgrade + follow, { waitMs: 500 }) : await rawExchange(proxy.origin, upgrade, { more: [follow], gapMs: 50, waitMs: 500 });
      const responses = parseResponses(r.text);
      expect({ sameWrite, closed: r.closed, statuses: responses.map((x) => x.status), connection: responses[0]?.headers.connection }).toEqual({
        sameWrite,
        closed: true,
        statuses: [200],
        connection: 'close',
      });
    }
    // The upgrade is not taken: fhirguard speaks HTTP/1.1, and nothing about the upgrade reaches the upstream.
    expect(up.traffic().map((t) => [t.path, t.headers.upgrade])).toEqual([
      ['/Patient/1', undefined],
      ['/Patient/1', undefined],
    ]);
  });

  test('a request after an Upgrade request on the same connection is refused, never forwarded', async () => {
    up.clear();
    // Held open by a slow answer, so the next request arrives before the connection closes.
    up.setBehaviour({ kind: 'slow', ms: 300 });
    try {
      const r = await rawExchange(proxy.origin, 'GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', {
        more: ['GET /fhir/Patient/2 HTTP/1.1\r\nHost: x\r\n\r\n'],
        gapMs: 50,
        waitMs: 1000,
      });
      expect(r.closed).toBe(true);
      expect(parseResponses(r.text)[0]?.status).toBe(200);
    } finally {
      up.setBehaviour({ kind: 'normal' });
    }
    expect(up.traffic().map((t) => t.path)).toEqual(['/Patient/1']);
  });

  test('a refusal, a forwarded request, then unframed bytes: both answered in turn, then the rest refused', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, 'GET /fhir/Practitioner/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n');
    const responses = parseResponses(r.text);
    expect(responses.map((x) => x.status)).toEqual([403, 200, 400]);
    expect(r.closed).toBe(true);
    expect(up.traffic().map((t) => t.path)).toEqual(['/Patient/1']);
  });

  test('a request followed by unframed bytes: the forwarded request is answered, then the rest refused', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, 'GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage that is no request\r\n\r\n');
    const responses = parseResponses(r.text);
    expect(responses.map((x) => x.status)).toEqual([200, 400]);
    expectOutcome(responses[1], 400, /not well-formed HTTP/);
    expect(r.closed).toBe(true);
    expect(up.traffic()).toHaveLength(1);
  });

  test('pipelined requests followed by unframed bytes: each forwarded request is answered in turn, then the rest refused', async () => {
    up.clear();
    const r = await rawExchange(
      proxy.origin,
      'GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /fhir/Patient/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /fhir/Patient/3 HTTP/1.1\r\nHost: x\r\n\r\n\x00garbage\r\n\r\n',
    );
    const responses = parseResponses(r.text);
    expect(responses.map((x) => x.status)).toEqual([200, 200, 200, 400]);
    expect(responses.slice(0, 3).map((x) => JSON.parse(x.body).id)).toEqual(['1', '2', '3']);
    expect(r.closed).toBe(true);
    expect(up.traffic().map((t) => t.path)).toEqual(['/Patient/1', '/Patient/2', '/Patient/3']);
  });

  test('a pipelined request cut short by a framing error in its body is answered with the refusal', async () => {
    up.clear();
    const r = await rawExchange(
      proxy.origin,
      `GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${patient}\r\n0\r\n\r\n`,
    );
    const responses = parseResponses(r.text);
    expect(responses.map((x) => x.status)).toEqual([200, 400]);
    expectOutcome(responses[1], 400, /not well-formed HTTP/);
    expect(up.traffic().map((t) => t.path)).toEqual(['/Patient/1']);
  });

  test('a body without a Content-Type is refused, not forwarded unchecked', async () => {
    up.clear();
    for (const target of ['/fhir/Observation/_search', '/fhir/Patient/$validate']) {
      const res = await send(proxy.origin, 'POST', target, { body: '{"a":1,"a":2}', omit: ['content-type'] });
      expect({ target, status: res.status, type: res.json?.resourceType }).toEqual({ target, status: 415, type: 'OperationOutcome' });
    }
    expect(up.traffic()).toHaveLength(0);
  });

  test('a slowloris client that never finishes its headers gets 408 and is closed', async () => {
    const r = await rawExchange(proxy.origin, 'GET /fhir/Patient/1 HTTP/1.1\r\nHost: x\r\n', {
      more: Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: y\r\n`),
      gapMs: 150,
      waitMs: 5000,
    });
    expect(r.closed).toBe(true);
    expectOutcome(parseResponses(r.text)[0], 408, /did not arrive in time/);
  });

  test('a client that trickles its body, however steadily, gets 408 at the request timeout and is closed', async () => {
    up.clear();
    const r = await rawExchange(proxy.origin, `POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{"resourceType"`, {
      more: Array.from({ length: 60 }, () => ' '),
      gapMs: 100,
      waitMs: 3000,
    });
    expect(r.closed).toBe(true);
    expectOutcome(parseResponses(r.text)[0], 408, /did not arrive in time/);
    expect(up.traffic()).toHaveLength(0);
  });
});

describe('generated framing', () => {
  const te = fc.constantFrom(undefined, 'chunked', 'Chunked', 'chunked, identity', 'identity', 'gzip, chunked', ' chunked', 'chunked\t', 'xchunked');
  const cl = fc.constantFrom(undefined, '0', '5', String(patient.length), '-1', '1e3', '0x10', `${patient.length}, ${patient.length}`, '99999999999999999999');
  const expectValue = fc.constantFrom(undefined, '100-continue', '100-Continue', 'garbage', '200-ok');
  const upgrade = fc.constantFrom(undefined, 'h2c', 'websocket');
  const method = fc.constantFrom('GET', 'POST', 'PUT');
  const target = fc.constantFrom('/fhir/Patient', '/fhir/Patient/1', '/fhir/Practitioner/1', '/fhir/Practitioner?name=x');

  test('every answer is a complete response; refusals are OperationOutcomes; denied reads never arrive', async () => {
    await fc.assert(
      fc.asyncProperty(method, target, te, cl, expectValue, upgrade, fc.boolean(), async (m, t, transferEncoding, contentLength, expectation, upg, trailing) => {
        up.clear();
        let head = `${m} ${t} HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n`;
        if (transferEncoding !== undefined) head += `Transfer-Encoding: ${transferEncoding}\r\n`;
        if (contentLength !== undefined) head += `Content-Length: ${contentLength}\r\n`;
        if (expectation !== undefined) head += `Expect: ${expectation}\r\n`;
        if (upg !== undefined) head += `Connection: Upgrade\r\nUpgrade: ${upg}\r\n`;
        const chunked = transferEncoding?.trim().toLowerCase().endsWith('chunked');
        const body = chunked ? `${patient.length.toString(16)}\r\n${patient}\r\n0\r\n\r\n` : patient;
        const r = await rawExchange(proxy.origin, `${head}Connection: close\r\n\r\n${body}${trailing ? 'TRAILING GARBAGE\r\n\r\n' : ''}`, { waitMs: 3000 });
        expect(r.closed).toBe(true);
        const responses = parseResponses(r.text).filter((x) => x.status !== 100);
        expect(responses.length).toBeGreaterThanOrEqual(1);
        for (const x of responses) {
          expect(x.status).not.toBe(500);
          expect(x.headers['x-request-id']).toBeTruthy();
          if (x.status >= 400) expect(JSON.parse(x.body).resourceType).toBe('OperationOutcome');
        }
        for (const seen of up.traffic()) {
          expect(seen.path.startsWith('/Practitioner')).toBe(false);
          expect(seen.headers.expect).toBeUndefined();
          expect(seen.headers.upgrade).toBeUndefined();
        }
      }),
      { numRuns: 60, seed: 20261205 },
    );
  }, 240_000);
});
