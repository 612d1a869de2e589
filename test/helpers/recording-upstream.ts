// A real FHIR-shaped HTTP server on loopback that stands behind the proxy in integration
// tests: it records every request it receives (method, raw URL, headers, body bytes) so a
// test can assert what crossed the front door (and, for refusals, that nothing did), and it
// answers like a tiny FHIR server. Switches make it slow (timeouts), answer 500, break
// connections, or die (listener closed, every socket destroyed: connection refused).
//
//   const up = await startRecordingUpstream();
//   ... proxy policy: upstreams: [up.url] ...
//   expect(up.traffic()).toHaveLength(0);  // health checks excluded
//   await up.close();

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** The request target exactly as received (path + query, still percent-encoded). */
  url: string;
  path: string;
  /** The raw query string without '?', '' when absent. */
  query: string;
  /** Header names lower-cased, as Node parses them. */
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** True for the proxy's own health checks (GET /metadata with user-agent fhirguard-health). */
  healthCheck: boolean;
}

export type Behaviour =
  /** Answer at once like a FHIR server. */
  | { kind: 'normal' }
  /** Wait this long before sending the response headers. */
  | { kind: 'slow'; ms: number }
  /** Answer every non-health-check request with 500 and an OperationOutcome. */
  | { kind: 'error500' }
  /** Destroy the connection of every non-health-check request without answering. */
  | { kind: 'reset' }
  /** Send the headers and the first part of a searchset, the rest once `release` resolves. */
  | { kind: 'hold'; release: Promise<void> };

export interface UpstreamOptions {
  /** Name used in the resources it returns (e.g. which upstream answered). */
  name?: string;
  /** Keep no log (benchmarks): every request is answered and forgotten. */
  record?: boolean;
  /** Serve HTTPS with these TLS options (key, cert, ca, requestCert...); url is then https://. */
  tls?: https.ServerOptions;
}

export interface RecordingUpstream {
  name: string;
  /** `http://127.0.0.1:PORT`, the policy's upstream address. */
  url: string;
  port: number;
  /** Every request received, health checks included, in arrival order. */
  requests: RecordedRequest[];
  /** Requests other than the proxy's health checks. */
  traffic(): RecordedRequest[];
  /** Forgets what was recorded so far. */
  clear(): void;
  setBehaviour(b: Behaviour): void;
  /** Resolves when a non-health-check request has arrived (already or later) matching `match`. */
  waitFor(match: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Resolves when the answer to a request matching `match` has been written out (or its connection closed). */
  waitAnswered(match: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Dies: stops listening and destroys every open connection (later connects are refused). */
  kill(): Promise<void>;
  /** Listens again on the same port after kill(). */
  revive(): Promise<void>;
  close(): Promise<void>;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function capabilityStatement(name: string): object {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    kind: 'instance',
    software: { name: `recording-upstream ${name}` },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server' }],
  };
}

function bundle(type: string, entry: object[] = []): object {
  return { resourceType: 'Bundle', type, total: entry.length, entry };
}

/** The answer a small FHIR server would give, by method and path shape. */
function answer(name: string, origin: string, method: string, path: string): { status: number; headers: Record<string, string>; body?: object } {
  const seg = path
    .split('/')
    .filter(Boolean)
    .map((s) => decodeURIComponent(s));
  const json = (status: number, body: object, headers: Record<string, string> = {}) => ({ status, headers, body });
  if (seg[0] === 'metadata') return json(200, capabilityStatement(name));
  if (seg.some((s) => s.startsWith('$'))) {
    return json(200, { resourceType: 'Parameters', parameter: [{ name: 'served-by', valueString: name }] });
  }
  if (seg.length === 0 && method === 'POST') return json(200, bundle('transaction-response'));
  if (seg.includes('_history')) return json(200, bundle('history'));
  if (seg.includes('_search') || seg.length === 0 || seg[2] === '*') return json(200, bundle('searchset'));
  const [type, id] = seg;
  const location = (rid: string) => ({ location: `${origin}/${type}/${rid}/_history/1`, etag: 'W/"1"' });
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (seg.length >= 3) return json(200, bundle('searchset')); // compartment search
      if (id === undefined) return json(200, bundle('searchset'));
      return json(200, { resourceType: type, id, meta: { versionId: '1' }, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${name}</div>` } }, { etag: 'W/"1"' });
    case 'POST':
      return json(201, { resourceType: type, id: 'new-1', meta: { versionId: '1' } }, location('new-1'));
    case 'PUT':
      return json(200, { resourceType: type, id: id ?? 'new-1', meta: { versionId: '2' } }, location(id ?? 'new-1'));
    case 'PATCH':
      return json(200, { resourceType: type, id: id ?? 'new-1', meta: { versionId: '2' } }, location(id ?? 'new-1'));
    case 'DELETE':
      return { status: 204, headers: {} };
    default:
      return json(405, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported', diagnostics: method }] });
  }
}

export async function startRecordingUpstream(opts: UpstreamOptions = {}): Promise<RecordingUpstream> {
  const name = opts.name ?? 'upstream';
  const record = opts.record ?? true;
  let behaviour: Behaviour = { kind: 'normal' };
  const requests: RecordedRequest[] = [];
  type Waiter = { match: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void };
  const waiters = new Set<Waiter>();
  const answerWaiters = new Set<Waiter>();
  const answered: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let origin = '';

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const healthCheck = req.headers['user-agent'] === 'fhirguard-health';
      const r: RecordedRequest = {
        method: req.method ?? '',
        url,
        path,
        query: q < 0 ? '' : url.slice(q + 1),
        headers: req.headers,
        body: Buffer.concat(chunks),
        healthCheck,
      };
      if (record) requests.push(r);
      if (!healthCheck) {
        for (const w of [...waiters]) {
          if (!w.match(r)) continue;
          waiters.delete(w);
          w.resolve(r);
        }
      }
      if (!healthCheck && record) {
        res.once('close', () => {
          answered.push(r);
          for (const w of [...answerWaiters]) {
            if (!w.match(r)) continue;
            answerWaiters.delete(w);
            w.resolve(r);
          }
        });
      }

      const b = healthCheck ? { kind: 'normal' as const } : behaviour;
      if (b.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (b.kind === 'error500') {
        res.writeHead(500, { 'content-type': FHIR_JSON });
        res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: `${name} failed` }] }));
        return;
      }
      if (b.kind === 'hold') {
        res.writeHead(200, { 'content-type': FHIR_JSON, 'x-served-by': name });
        res.write('{"resourceType":"Bundle","type":"searchset","entry":[');
        void b.release.then(() => res.end(']}'));
        return;
      }
      const a = answer(name, origin, r.method, path);
      const send = () => {
        if (res.destroyed) return;
        // Hop-by-hop headers of this connection that the proxy must not pass on to its client.
        const headers: Record<string, string> = {
          ...a.headers,
          connection: 'keep-alive, x-upstream-hop',
          'keep-alive': 'timeout=61, max=997',
          'x-upstream-hop': 'connection-scoped',
          'proxy-authenticate': 'Basic realm="upstream"',
          'x-served-by': name,
        };
        if (a.body === undefined) {
          res.writeHead(a.status, headers).end();
          return;
        }
        const text = JSON.stringify(a.body);
        res.writeHead(a.status, { ...headers, 'content-type': FHIR_JSON, 'content-length': String(Buffer.byteLength(text)) });
        res.end(r.method === 'HEAD' ? undefined : text);
      };
      if (b.kind === 'slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, b.ms);
        timers.add(t);
      } else {
        send();
      }
    });
  };
  const server = opts.tls ? https.createServer({ keepAliveTimeout: 60_000, ...opts.tls }, handler) : http.createServer({ keepAliveTimeout: 60_000 }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  origin = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const kill = async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    const closed = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };

  return {
    name,
    url: origin,
    port,
    requests,
    traffic: () => requests.filter((r) => !r.healthCheck),
    clear: () => {
      requests.splice(0);
      answered.splice(0);
    },
    setBehaviour: (b) => void (behaviour = b),
    waitFor(match, timeoutMs = 30_000) {
      const seen = requests.find((r) => !r.healthCheck && match(r));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        waiters.add(w);
        setTimeout(() => {
          if (waiters.delete(w)) reject(new Error(`${name}: no matching request within ${timeoutMs} ms`));
        }, timeoutMs).unref();
      });
    },
    waitAnswered(match, timeoutMs = 30_000) {
      const done = answered.find(match);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        answerWaiters.add(w);
        setTimeout(() => {
          if (answerWaiters.delete(w)) reject(new Error(`${name}: no matching request answered within ${timeoutMs} ms`));
        }, timeoutMs).unref();
      });
    },
    kill,
    revive: () => listen(port),
    close: kill,
  };
}
