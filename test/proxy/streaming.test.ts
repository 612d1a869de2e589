// Responses streamed through the real proxy process (src/proxy/forward.ts, one path for every
// method) from upstreams that misbehave on purpose: a body far larger than any buffer, read by
// a client that stalls (backpressure, bytes intact), for a read and for a search by POST (whose
// form reaches the upstream as sent); HEAD; repeated response headers; an upstream that breaks
// off a body under way (the client's connection is cut, never a short body that looks whole,
// and it counts as an upstream error); a client that leaves mid-body (the upstream's response
// is abandoned); an upstream whose headers Node will not write (502 OperationOutcome).

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { closeClients, send } from '../helpers/http-client';
import { scrapeUntil, value } from '../helpers/metrics-text';

const BIG = Buffer.alloc(16 * 2 ** 20, 'abcdefghijklmnopqrstuvwxyz0123456789');
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');

let dir: string;
let proxy: ProxyProcess;
let upstream: http.Server;
let raw: net.Server;
/** Resolved when the upstream sees its endless response close (its client, the proxy, let go). */
let endlessClosed!: () => void;
const endlessLetGo = new Promise<void>((resolve) => (endlessClosed = resolve));

/** The forms of the searches by POST the upstream received. */
const searchForms: string[] = [];

/** BIG, written in pieces as a server streaming a large result would (headers only for HEAD). */
function sendBig(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': BIG.length });
  if (req.method === 'HEAD') return void res.end();
  let at = 0;
  const more = (): void => {
    while (at < BIG.length) {
      const piece = BIG.subarray(at, (at += 256 * 1024));
      if (!res.write(piece)) return void res.once('drain', more);
    }
    res.end();
  };
  more();
}

function listen(server: net.Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`)));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-read-stream-'));
  upstream = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/metadata') return void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"CapabilityStatement"}');
    if (url === '/Binary/big') return sendBig(req, res);
    if (url === '/Patient/_search' && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      return void req.once('end', () => {
        searchForms.push(Buffer.concat(chunks).toString());
        sendBig(req, res);
      });
    }
    if (url === '/Patient/cookies') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      return void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient","id":"cookies"}');
    }
    if (url === '/Patient/broken') {
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': 100_000 });
      res.write('{"resourceType":"Patient","id":"broken","text":"');
      return void setTimeout(() => req.socket.destroy(), 50);
    }
    if (url === '/Patient/endless') {
      res.on('close', () => endlessClosed());
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.write('{"resourceType":"Bundle","type":"searchset","entry":[');
      const timer = setInterval(() => res.write('{"resource":{"resourceType":"Patient"}},'), 10);
      return void res.on('close', () => clearInterval(timer));
    }
    res.writeHead(404, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome","issue":[]}');
  });
  // Speaks HTTP by hand: a header value with a control character Node's own server would never send.
  raw = net.createServer((socket) => {
    socket.once('data', (data) => {
      const metadata = data.toString('latin1').startsWith('GET /metadata ');
      const body = metadata ? '{"resourceType":"CapabilityStatement"}' : '{"resourceType":"Patient"}';
      const bad = metadata ? '' : 'X-Note: one\x01two\r\n';
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n${bad}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    socket.on('error', () => undefined);
  });
  const [upUrl, rawUrl] = await Promise.all([listen(upstream), listen(raw)]);
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [upUrl], timeoutMs: 30_000 },
        { name: 'odd', upstreams: [rawUrl], timeoutMs: 30_000 },
      ],
      rules: [
        { resources: ['Observation'], interactions: ['read', 'search-type'], tier: 'odd' },
        { resources: ['*'], interactions: ['read', 'search-type', 'capabilities'], tier: 'read' },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  await new Promise((r) => raw?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** What a client that stops reading twice on the way got from `method` `target` (with `form`, sent as a search's form). */
function readStalling(method: 'GET' | 'POST', target: string, form?: string): Promise<{ status: number; sha: string; length: number }> {
  return new Promise((resolve, reject) => {
    const headers = form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(form)) };
    const req = http.request(`${proxy.origin}${target}`, { method, headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      let stalls = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        // Stop reading twice, long enough for every buffer between upstream and client to fill.
        if ((stalls === 0 && length > 2 ** 20) || (stalls === 1 && length > 8 * 2 ** 20)) {
          stalls++;
          res.pause();
          setTimeout(() => res.resume(), 400);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: hash.digest('hex'), length }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(form);
  });
}

test('a 16 MiB read reaches a client that stalls twice on the way, byte for byte', async () => {
  expect(await readStalling('GET', '/fhir/Binary/big')).toEqual({ status: 200, sha: BIG_SHA, length: BIG.length });
}, 60_000);

test('a search by POST: its form reaches the upstream as sent, and 16 MiB of results a stalling client, byte for byte', async () => {
  const form = 'name=Chalmers&_count=5&identifier=urn%3Aoid%3A1.2%7C12345';
  expect(await readStalling('POST', '/fhir/Patient/_search', form)).toEqual({ status: 200, sha: BIG_SHA, length: BIG.length });
  expect(searchForms).toEqual([form]);
}, 60_000);

test('HEAD gets the status and headers of the read, and no body', async () => {
  const res = await send(proxy.origin, 'HEAD', '/fhir/Binary/big');
  expect(res.status).toBe(200);
  expect(res.headers['content-length']).toBe(String(BIG.length));
  expect(res.headers['x-request-id']).toBeTruthy();
  expect(res.body.length).toBe(0);
});

test('a header the upstream sends twice reaches the client twice', async () => {
  const res = await send(proxy.origin, 'GET', '/fhir/Patient/cookies');
  expect(res.status).toBe(200);
  expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  expect(res.json).toEqual({ resourceType: 'Patient', id: 'cookies' });
});

test('an upstream that breaks off a body under way: the client sees a broken response, counted as an upstream error', async () => {
  const before = await scrapeUntil(proxy.adminUrl, () => true);
  const outcome = await new Promise<{ status: number; received: number; ended: boolean; error?: string }>((resolve) => {
    const req = http.get(`${proxy.origin}/fhir/Patient/broken`, { agent: false }, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, received, ended: true }));
      res.on('error', (e) => resolve({ status: res.statusCode ?? 0, received, ended: false, error: e.message }));
    });
    req.on('error', (e) => resolve({ status: 0, received: 0, ended: false, error: e.message }));
  });
  // The status and first bytes were already on their way; what matters is that the body never ends as if whole.
  expect(outcome.status).toBe(200);
  expect(outcome.ended).toBe(false);
  expect(outcome.error).toBeDefined();
  expect(outcome.received).toBeLessThan(100_000);
  const counted = (s: Parameters<typeof value>[0]) => value(s, 'fhirguard_requests_total', { tier: 'read', interaction: 'read', resource_type: 'Patient', outcome: 'upstream-error' });
  const after = await scrapeUntil(proxy.adminUrl, (s) => counted(s) > counted(before.samples));
  expect(counted(after.samples)).toBe(counted(before.samples) + 1);
  expect(value(after.samples, 'fhirguard_upstream_errors_total', { tier: 'read', kind: 'connect' })).toBe(
    value(before.samples, 'fhirguard_upstream_errors_total', { tier: 'read', kind: 'connect' }) + 1,
  );
  // The log line travels through the proxy's stdout pipe, so it may arrive after the scrape.
  const logged = () => proxy.logs().some((l) => /broke off a response under way/.test(l.msg));
  for (let i = 0; i < 200 && !logged(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(logged()).toBe(true);
  // And the proxy still serves.
  expect((await send(proxy.origin, 'GET', '/fhir/Patient/cookies')).status).toBe(200);
});

test("a client that leaves mid-body: the upstream's response is let go", async () => {
  // The upstream writes every 10 ms forever, so the tier's body timeout never fires: only the
  // proxy passing on the client's leaving ends the upstream's response (else: the test's timeout).
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${proxy.origin}/fhir/Patient/endless`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (e) => (e.message === 'socket hang up' ? undefined : reject(e)));
  });
  await endlessLetGo;
  const labels = { tier: 'read', interaction: 'read', resource_type: 'Patient', outcome: 'client-closed' };
  const after = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_requests_total', labels) >= 1);
  expect(value(after.samples, 'fhirguard_requests_total', labels)).toBe(1);
}, 30_000);

test.each([
  ['GET', '/fhir/Observation/odd'],
  ['POST', '/fhir/Observation/_search'],
])('an upstream whose headers Node will not pass on (%s): 502 OperationOutcome, and the proxy keeps serving', async (method, target) => {
  const res = await send(proxy.origin, method, target, method === 'POST' ? { body: 'code=1234-5', headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {});
  expect(res.status).toBe(502);
  expect(res.json?.resourceType).toBe('OperationOutcome');
  expect(res.headers['x-note']).toBeUndefined();
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect((await send(proxy.origin, 'GET', '/fhir/Patient/cookies')).status).toBe(200);
});

test('the proxy logged no internal error through all of this', () => {
  expect(
    proxy
      .logs()
      .filter((l) => l.level >= 50)
      .map((l) => l.msg),
  ).toEqual([]);
});
