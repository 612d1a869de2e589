// Checks on a request's head that Node's parser leaves to the server, made before the request
// is taken for a FHIR interaction (the pipeline's first step). Each closes a gap between what
// fhirguard reads and what a server behind it would:
// - HTTP version: Node takes a request line without one for HTTP/0.9 and serves it; nothing
//   but HTTP/1.x is a request fhirguard forwards.
// - Host: RFC 9112 §3.2 makes a server refuse a request without one (HTTP/1.1), with more than
//   one, or with one that is not a host; Node keeps the first of several and takes any value,
//   and the value is what X-Forwarded-Host and rewritten Locations carry.
// - Header fields: Node takes up to 2000 and silently drops the rest; servers behind fhirguard
//   refuse far fewer (Tomcat, under HAPI FHIR, answers more than 100 with an empty 400). The
//   limit leaves room for the X-Forwarded-* and X-Request-Id fhirguard adds.
// - Upgrade: a connection that asked for one closes after that answer (upgrade.ts); a request
//   still arriving on it is refused unforwarded.
// - Content-Encoding: fhirguard validates a body as the bytes it is, and forwards what it
//   validated; a coded body would be forwarded unchecked, so it is refused.

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { httpRefusal } from './errors';
import { afterUpgrade } from './upgrade';

/** Header fields a request may carry (lines, repeated names counted each time). */
export const MAX_HEADER_FIELDS = 90;

/** RFC 3986 host (an IP literal, or a reg-name, which covers IPv4 and DNS names) and optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?$/;

export function checkRequestHead(raw: IncomingMessage, headers: IncomingHttpHeaders): void {
  if (raw.httpVersionMajor !== 1) throw httpRefusal.httpVersion(raw.httpVersion);
  if (afterUpgrade(raw)) throw httpRefusal.afterUpgrade();
  const lines = raw.rawHeaders;
  if (lines.length > 2 * MAX_HEADER_FIELDS) throw httpRefusal.tooManyHeaders(lines.length / 2, MAX_HEADER_FIELDS);
  const host = headers.host;
  if (host === undefined) {
    if (raw.httpVersionMinor === 1) throw httpRefusal.missingHost();
  } else {
    let hosts = 0;
    for (let i = 0; i < lines.length; i += 2) {
      const name = lines[i];
      if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    }
    if (hosts > 1) throw httpRefusal.duplicateHost();
    if (!HOST.test(host)) throw httpRefusal.badHost(host);
  }
  const coding = headers['content-encoding'];
  if (coding !== undefined && coding.trim().toLowerCase() !== 'identity') throw httpRefusal.contentEncoding(coding);
}
