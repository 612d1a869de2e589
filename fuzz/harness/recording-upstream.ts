// A FHIR-shaped loopback server standing behind the proxy during a campaign. It answers at
// once like a small FHIR server (so a healthy upstream never explains a 5xx) and hands every
// request it receives, body included, to the campaign's upstream oracles. It marks each of
// its answers with X-Served-By so the response oracles can tell upstream answers from the
// proxy's own refusals.

import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  tier: string;
  method: string;
  /** The request target exactly as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Header names and values as sent, in order (duplicates kept). */
  rawHeaders: string[];
  body: Buffer;
}

export interface RecordingUpstream {
  tier: string;
  url: string;
  /** Requests other than the proxy's own health checks, counted. */
  seen(): number;
  close(): Promise<void>;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

function answer(tier: string, method: string, path: string): { status: number; body?: object } {
  const seg = path.split('/').filter(Boolean);
  if (seg[0] === 'metadata') {
    return { status: 200, body: { resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance', fhirVersion: '4.0.1', format: ['json'] } };
  }
  if (seg.some((s) => s.startsWith('$'))) return { status: 200, body: { resourceType: 'Parameters', parameter: [{ name: 'served-by', valueString: tier }] } };
  const searchset = { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] };
  if (seg.length === 0 && method === 'POST') return { status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', entry: [] } };
  if (seg.length === 1 && method === 'POST' && seg[0] !== '_search') return { status: 201, body: { resourceType: seg[0], id: 'new-1', meta: { versionId: '1' } } };
  if (seg.length !== 2 || seg.includes('_history') || seg.includes('_search')) return { status: 200, body: searchset };
  const [type, id] = seg;
  switch (method) {
    case 'GET':
    case 'HEAD':
      return { status: 200, body: { resourceType: type, id, meta: { versionId: '1' } } };
    case 'POST':
      return { status: 201, body: { resourceType: type, id: 'new-1', meta: { versionId: '1' } } };
    case 'PUT':
    case 'PATCH':
      return { status: 200, body: { resourceType: type, id, meta: { versionId: '2' } } };
    case 'DELETE':
      return { status: 204 };
    default:
      return { status: 405, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported', diagnostics: method }] } };
  }
}

export async function startRecordingUpstream(tier: string, onRequest: (r: SeenRequest) => void): Promise<RecordingUpstream> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (req.headers['user-agent'] !== 'fhirguard-health') {
        count++;
        onRequest({ tier, method: req.method ?? '', url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      }
      const a = answer(tier, req.method ?? '', path);
      const headers: Record<string, string> = { 'x-served-by': tier };
      if (a.body === undefined) {
        res.writeHead(a.status, headers).end();
        return;
      }
      const text = JSON.stringify(a.body);
      res.writeHead(a.status, { ...headers, 'content-type': FHIR_JSON, 'content-length': String(Buffer.byteLength(text)) });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    tier,
    url: `http://127.0.0.1:${port}`,
    seen: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
