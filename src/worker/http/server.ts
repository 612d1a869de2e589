// The worker's HTTP server (node:http, no framework: nothing between the socket and the
// handlers that the kernel profile would have to allow for). Each request's body is read,
// then the whole request is handled synchronously, SQLite included, and answered.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { FhirError, refuse } from '../../fhir/outcome';
import type { FhirRequest, FhirResponse, PreferReturn, WorkerContext } from '../rest/handler-context';
import { dispatch } from '../rest/dispatch';
import { decodeBody, readBody } from './body';

const JSON_CONTENT_TYPE = 'application/fhir+json; charset=utf-8';

/** Accept values the worker can satisfy (it writes FHIR JSON only). */
const ACCEPTABLE = /(^|,)\s*(\*\/\*|application\/\*|application\/(fhir\+)?json|application\/json\+fhir)\s*(;|,|$)/i;
const FORMAT_OK = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir']);

/** The URL clients see: the proxy forwards its own scheme, host and base path in these headers. */
function baseUrl(req: IncomingMessage): string {
  const first = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h)?.split(',')[0].trim() || undefined;
  const proto = first(req.headers['x-forwarded-proto']) ?? 'http';
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host ?? 'localhost';
  const prefix = (first(req.headers['x-forwarded-prefix']) ?? '').replace(/\/+$/, '');
  return `${proto}://${host}${prefix}`;
}

function preferReturn(header: string | string[] | undefined): PreferReturn {
  const m = /return\s*=\s*"?(minimal|representation|OperationOutcome)/.exec(String(header ?? ''));
  return (m?.[1] as PreferReturn | undefined) ?? 'representation';
}

function checkAccept(req: IncomingMessage, query: [string, string][]): void {
  const format = query.find(([k]) => k === '_format')?.[1];
  if (format !== undefined && !FORMAT_OK.has(format.toLowerCase())) {
    throw refuse(406, 'not-acceptable', 'not-supported', `_format=${format} is not available; this server speaks FHIR JSON only`);
  }
  const accept = req.headers.accept;
  if (format === undefined && accept && !ACCEPTABLE.test(accept)) {
    throw refuse(406, 'not-acceptable', 'not-supported', `cannot answer in '${accept}'; this server speaks application/fhir+json`);
  }
}

function bodyKind(method: string, segments: string[]): 'json' | 'patch' | 'form' {
  if (method === 'PATCH') return 'patch';
  if (method === 'POST' && segments.length === 2 && segments[1] === '_search') return 'form';
  return 'json';
}

function segmentsOf(pathname: string): string[] {
  try {
    return pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw refuse(400, 'bad-path', 'invalid', 'the URL path has a malformed percent escape');
  }
}

export interface ServerOptions {
  ctx: WorkerContext;
  log: Logger;
  capabilities: () => string;
  maxBodyBytes?: number;
}

export interface WorkerServer {
  server: Server;
  /** Requests being read or answered. */
  inFlight(): number;
  /** From now on responses say Connection: close, so keep-alive clients let go. */
  markClosing(): void;
}

function errorResponse(err: unknown, log: Logger, method: string, url: string): FhirResponse {
  if (err instanceof FhirError) {
    return {
      status: err.status,
      body: JSON.stringify(err.toOutcome()),
      ...(err.headers ? { headers: { ...err.headers } } : {}),
    };
  }
  const code = String((err as { code?: string }).code ?? '');
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    log.warn({ method, url, code }, 'database busy');
    const e = refuse(503, 'busy', 'transient', 'the database is busy with other writers; retry');
    return { status: 503, body: JSON.stringify(e.toOutcome()), headers: { 'Retry-After': '1' } };
  }
  if (code === 'SQLITE_READONLY_ROLLBACK' || code === 'SQLITE_READONLY_RECOVERY') {
    // A writer died inside a transaction and left a hot journal: only a writable connection
    // can roll it back, which any write worker does as soon as it touches the database.
    log.warn({ method, url, code }, 'database needs recovery by a write worker');
    const e = refuse(503, 'recovery', 'transient', 'the database awaits recovery by a write worker; retry');
    return { status: 503, body: JSON.stringify(e.toOutcome()), headers: { 'Retry-After': '1' } };
  }
  log.error({ err, method, url }, 'request failed');
  const e = refuse(500, 'internal-error', 'exception', 'the worker failed to process the request; see its log');
  return { status: 500, body: JSON.stringify(e.toOutcome()) };
}

export function createWorkerServer(opts: ServerOptions): WorkerServer {
  const { ctx, log } = opts;
  let inFlight = 0;
  let closing = false;

  function send(res: ServerResponse, method: string, out: FhirResponse, pretty: boolean): void {
    const headers: Record<string, string> = { ...out.headers };
    let body = out.body;
    if (body !== undefined) {
      if (pretty) body = JSON.stringify(JSON.parse(body), null, 2);
      headers['Content-Type'] = JSON_CONTENT_TYPE;
      headers['Content-Length'] = String(Buffer.byteLength(body));
    } else {
      headers['Content-Length'] = '0';
    }
    if (closing) headers.Connection = 'close';
    res.writeHead(out.status, headers);
    res.end(method === 'HEAD' ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    let out: FhirResponse;
    let pretty = false;
    try {
      const q = url.indexOf('?');
      const segments = segmentsOf(q < 0 ? url : url.slice(0, q));
      const query = q < 0 ? [] : [...new URLSearchParams(url.slice(q + 1))];
      pretty = query.some(([k, v]) => k === '_pretty' && v === 'true');
      const buf = await readBody(req, opts.maxBodyBytes);
      checkAccept(req, query);
      const fhirReq: FhirRequest = {
        method,
        segments,
        query,
        headers: req.headers,
        body: buf.length ? decodeBody(buf, req.headers['content-type'], bodyKind(method, segments)) : undefined,
        base: baseUrl(req),
        prefer: preferReturn(req.headers.prefer),
      };
      out = dispatch(ctx, fhirReq, opts.capabilities);
    } catch (err) {
      out = errorResponse(err, log, method, url);
      if (out.status === 413) out.headers = { ...out.headers, Connection: 'close' };
    }
    send(res, method, out, pretty);
    if (out.status === 413) res.on('finish', () => req.destroy());
    if (log.isLevelEnabled('debug')) {
      log.debug({ method, url, status: out.status, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    }
  }

  const server = createServer((req, res) => {
    inFlight++;
    res.on('close', () => inFlight--);
    handle(req, res).catch((err) => {
      // handle() answers every error itself; this is the last resort for a bug in send().
      log.error({ err }, 'response failed');
      res.destroy();
    });
  });
  return {
    server,
    inFlight: () => inFlight,
    markClosing: () => {
      closing = true;
    },
  };
}
