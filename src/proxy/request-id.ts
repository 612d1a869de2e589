// X-Request-Id: a client's id is kept when it is short and made of safe characters (it ends
// up in logs and upstream headers), anything else is replaced by a fresh UUID.

import { randomUUID } from 'node:crypto';

const SAFE_ID = /^[A-Za-z0-9._:@+=\-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && SAFE_ID.test(header) ? header : randomUUID();
}
