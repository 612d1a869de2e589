// Requests refused below Fastify: Node's HTTP parser ends a connection whose bytes are not a
// well-framed request (smuggling shapes, bad chunking, a request line or headers past the
// size limit, a header timeout), and answers an Expect it cannot meet, before any route or
// hook runs. fhirguard answers those like every other refusal: a FHIR OperationOutcome with a
// diagnostic, an X-Request-Id and the refusal counted, then closes the connection (what
// follows a framing error on it cannot be trusted).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { FhirError } from '../fhir/outcome';
import type { ProxyMetrics } from '../metrics/registry';
import { FHIR_JSON, httpRefusal } from './errors';
import { newRequestId } from './request-id';

/** The request line and headers together; what the listener accepts (server.ts). */
export const MAX_HEADER_BYTES = 15 * 1024;

const STATUS_TEXT: ReadonlyMap<number, string> = new Map([
  [400, 'Bad Request'],
  [408, 'Request Timeout'],
  [413, 'Content Too Large'],
  [417, 'Expectation Failed'],
  [431, 'Request Header Fields Too Large'],
]);

/** Node's parser error codes → the refusal they get. */
function refusalOf(err: NodeJS.ErrnoException): FhirError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return httpRefusal.headersTooLarge(MAX_HEADER_BYTES);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return httpRefusal.requestTimeout();
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return httpRefusal.chunkExtensionsTooLarge();
    default: {
      const reason = (err as { reason?: unknown }).reason;
      return httpRefusal.malformed(`${err.code ?? 'parse error'}${typeof reason === 'string' ? `: ${reason}` : ''}`);
    }
  }
}

/** A refusal as raw HTTP/1.1 bytes, for connections no HTTP response object serves. */
export function rawResponse(error: FhirError, requestId: string): string {
  const body = JSON.stringify(error.toOutcome());
  return (
    `HTTP/1.1 ${error.status} ${STATUS_TEXT.get(error.status) ?? 'Error'}\r\n` +
    `content-type: ${FHIR_JSON}\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-request-id: ${requestId}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** Fastify's clientErrorHandler: a framing error becomes an OperationOutcome, then the connection closes. */
export function clientErrorHandler(metrics: ProxyMetrics, logger: Logger): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // A peer that went away: nothing to say to it.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const error = refusalOf(err);
    const requestId = newRequestId();
    metrics.refusal(error.reason);
    logger.info({ reqId: requestId, status: error.status, reason: error.reason, diagnostics: error.message }, 'refused');
    answerInTurn(socket, error, requestId);
  };
}

type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/**
 * Refuses what follows a framing error once every request before it has its answer. Node
 * answers pipelined requests in order, one response at a time (the socket's current one);
 * a whole request's answer goes out first, however many wait behind it; a request the error
 * cut short (its body incomplete, never forwarded) is answered with the refusal itself; then
 * the connection closes.
 */
function answerInTurn(socket: HttpSocket, error: FhirError, requestId: string): void {
  const current = socket._httpMessage;
  if (!current) {
    if (!socket.destroyed) socket.end(rawResponse(error, requestId));
    return;
  }
  // A response already written out (writableFinished) is still the socket's current one until
  // its 'finish' is emitted, which is when Node hands the socket to the next pipelined
  // response: waiting for it keeps that response from being cut off.
  if (current.req?.complete || current.writableFinished) {
    current.once('finish', () => setImmediate(() => answerInTurn(socket, error, requestId)));
    current.once('close', () => {
      if (!current.writableFinished) socket.destroy();
    });
    return;
  }
  if (current.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(error.toOutcome());
  current.shouldKeepAlive = false;
  current.writeHead(error.status, { 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, connection: 'close' });
  current.end(body, () => socket.destroySoon());
}

/** The server's checkExpectation listener: an Expect other than 100-continue gets 417. */
export function expectationRefusal(metrics: ProxyMetrics, logger: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const error = httpRefusal.expectationFailed(String(req.headers.expect));
    const requestId = newRequestId();
    metrics.refusal(error.reason);
    logger.info({ reqId: requestId, status: error.status, reason: error.reason, diagnostics: error.message }, 'refused');
    const body = JSON.stringify(error.toOutcome());
    res.writeHead(417, { 'content-type': FHIR_JSON, 'content-length': Buffer.byteLength(body), 'x-request-id': requestId, connection: 'close' });
    res.end(body);
    req.socket.destroySoon?.();
  };
}

/**
 * The server's connect listener: CONNECT asks for a tunnel, which a FHIR front door never
 * opens (Node would otherwise drop the connection without a word). 405, then closed.
 */
export function connectRefusal(metrics: ProxyMetrics, logger: Logger): (req: IncomingMessage, socket: Socket) => void {
  return (_req, socket) => {
    const error = httpRefusal.connect();
    const requestId = newRequestId();
    metrics.refusal(error.reason);
    logger.info({ reqId: requestId, status: error.status, reason: error.reason, diagnostics: error.message }, 'refused');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify(error.toOutcome());
    socket.end(
      'HTTP/1.1 405 Method Not Allowed\r\n' +
        `content-type: ${FHIR_JSON}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        'allow: GET, HEAD, POST, PUT, PATCH, DELETE\r\n' +
        `x-request-id: ${requestId}\r\n` +
        'connection: close\r\n\r\n' +
        body,
    );
  };
}
