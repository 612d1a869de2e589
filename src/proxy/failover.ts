// When a request that failed on one member of its tier may go to another: the one retry rule
// of the front door, for every method. A member that cannot be reached (or broke the
// connection) is marked down until its health check passes again. A GET or HEAD that met such
// a failure goes once to another member; any other request does only when the connection
// could not even be made (it was never sent, so it is still sent once): a write that may have
// reached a member, and may have been applied there, is never sent again.

import { codeOf } from './errors';

/** Failures that say the member cannot be reached at all (so another member may serve). */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT', // Unix socket file gone
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EACCES',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/**
 * Failures to connect at all: undici fails a request with these only while it waits for a
 * connection, before a byte of it is written (a request written on a socket that breaks gets
 * ECONNRESET, EPIPE or UND_ERR_SOCKET instead). Such a request never reached the member, so
 * sending it to another one sends it once, whatever its method.
 */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', // nothing listens (a worker that stopped accepting as it shuts down)
  'ENOENT', // Unix socket file gone
  'EACCES',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Methods whose request may be sent twice without changing anything upstream. */
const IDEMPOTENT_READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/** The member could not be reached, or broke the connection: it is down until its health check passes. */
export function memberUnreachable(err: unknown): boolean {
  return CONNECTION_CODES.has(codeOf(err));
}

/** May a request that failed with `err` before its response started go to another member? */
export function mayGoElsewhere(method: string, err: unknown): boolean {
  const code = codeOf(err);
  return CONNECTION_CODES.has(code) && (IDEMPOTENT_READS.has(method) || NOT_SENT_CODES.has(code));
}
