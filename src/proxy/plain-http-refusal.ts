// Plain HTTP sent to the HTTPS listener. Node's TLS server would take the request line for a
// broken handshake and drop the connection without a word; a client (or an operator with
// curl) that forgot the s gets an answer instead: a TLS connection starts with a handshake
// record (first byte 0x16), so each connection's first bytes are looked at before the TLS
// server sees them, and anything else is answered with a 400 OperationOutcome in plain
// HTTP, counted as a refusal, and closed. Nothing of it is parsed, let alone forwarded.

import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ProxyMetrics } from '../metrics/registry';
import { httpRefusal } from './errors';
import { rawResponse } from './http-refusals';
import { newRequestId } from './request-id';

/** TLS record type of a handshake (RFC 8446 §5.1): every ClientHello's first byte. */
const TLS_HANDSHAKE = 0x16;

/** How long a refused connection may take to read its answer before it is cut. */
const LINGER_MS = 2000;

type ConnectionListener = (socket: Socket) => void;

/**
 * Puts the first-byte check in front of the server's TLS connection listener. A connection
 * that sends nothing within `firstByteTimeoutMs` is closed (the TLS handshake timeout starts
 * only after it). Returns a function closing the connections still being looked at.
 */
export function refusePlainHttp(server: HttpsServer, metrics: ProxyMetrics, logger: Logger, firstByteTimeoutMs: number): () => void {
  const tlsListeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  const pending = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    pending.add(socket);
    const timer = setTimeout(() => socket.destroy(), firstByteTimeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      pending.delete(socket);
    };
    socket.once('close', done);
    socket.once('error', () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      done();
      socket.off('close', done);
      socket.pause();
      if (chunk[0] === TLS_HANDSHAKE) {
        // TLSSocket reads what the socket already holds before its own reads start.
        socket.unshift(chunk);
        for (const l of tlsListeners) l.call(server, socket);
        return;
      }
      refuse(socket, metrics, logger);
    });
  });
  return () => {
    for (const s of pending) s.destroy();
    pending.clear();
  };
}

function refuse(socket: Socket, metrics: ProxyMetrics, logger: Logger): void {
  const error = httpRefusal.plainHttp();
  const requestId = newRequestId();
  metrics.refusal(error.reason);
  logger.info({ reqId: requestId, status: error.status, reason: error.reason, diagnostics: error.message, remote: socket.remoteAddress }, 'refused');
  // What the client still sends is read and dropped, so that closing does not reset the
  // connection under the answer before the client has read it.
  socket.on('data', () => undefined);
  socket.resume();
  socket.end(rawResponse(error, requestId));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
