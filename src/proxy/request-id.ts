// X-Request-Id: a client's id is kept when it is short and made of safe characters (it ends
// up in logs and upstream headers), anything else is replaced by a fresh one.
//
// A fresh id is UUID-shaped (RFC 9562 version 8, the custom layout): 74 random bits drawn
// once per process and a 48-bit per-process counter. Ids never repeat within a process and
// collide across processes only if two of them draw the same random bits; generating one
// costs a counter increment instead of a randomUUID() per request (which showed in
// bench:proxy's profile of a read).

import { randomBytes } from 'node:crypto';

const SAFE_ID = /^[A-Za-z0-9._:@+=-]{1,128}$/;

const prefix = processPrefix();
let counter = 0;

/** `xxxxxxxx-xxxx-8xxx-yxxx-` with the version and variant bits set, from random bytes. */
function processPrefix(): string {
  const b = randomBytes(10);
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-`;
}

/** A fresh request id: the process prefix and the next counter value in 12 hex digits. */
export function newRequestId(): string {
  counter = (counter + 1) % 0x1000000000000;
  return prefix + counter.toString(16).padStart(12, '0');
}

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_ID.test(header) ? header : newRequestId();
}
