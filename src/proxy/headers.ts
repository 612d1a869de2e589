// Header hygiene at the front door. Hop-by-hop headers (RFC 9110 §7.6.1) describe one
// connection and never cross the proxy, in either direction; X-Forwarded-* tell the
// upstream who asked; Location and Content-Location from an upstream are rewritten to the
// public base so clients never see an internal address.

import type { FastifyRequest } from 'fastify';
import type { Upstream } from './address';

type Headers = Record<string, string | string[] | number | undefined>;

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

function stripHopByHop(headers: Headers): void {
  // The Connection header may name further headers that are hop-by-hop for this connection.
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const name of String(connection).split(',')) {
      const key = name.trim().toLowerCase();
      if (key) delete headers[key];
    }
  }
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];
}

/** What the upstream receives: the client's end-to-end headers plus who asked. */
export function forwardRequestHeaders(request: FastifyRequest, headers: Headers, base: string, hasBody: boolean): Headers {
  stripHopByHop(headers);
  if (!hasBody) {
    // Nothing is forwarded (a body on GET, say, is dropped): no length must be announced.
    if (headers['content-length'] !== undefined) delete headers['content-length'];
  }
  const prior = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = typeof prior === 'string' && prior ? `${prior}, ${request.ip}` : request.ip;
  headers['x-forwarded-proto'] = request.protocol;
  const host = request.headers.host;
  if (host) headers['x-forwarded-host'] = host;
  else delete headers['x-forwarded-host'];
  headers['x-forwarded-prefix'] = base;
  headers['x-request-id'] = request.id;
  return headers;
}

/** Builds the rewrite of upstream URLs (absolute on a member, or relative) to the public base. */
export function locationRewriter(members: readonly Upstream[]): (value: string, publicBase: string) => string {
  const absolute = [...new Set(members.map((m) => m.baseUrl))].sort((a, b) => b.length - a.length);
  const basePaths = [...new Set(members.map((m) => m.basePath).filter(Boolean))];
  return (value, publicBase) => {
    for (const prefix of absolute) {
      if (value.startsWith(prefix) && (value.length === prefix.length || '/?#'.includes(value[prefix.length]))) {
        return publicBase + value.slice(prefix.length);
      }
    }
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(value) || value.startsWith('//')) return value; // someone else's URL
    if (value.startsWith('/')) {
      for (const bp of basePaths) if (value.startsWith(bp + '/')) return publicBase + value.slice(bp.length);
      return publicBase + value;
    }
    return `${publicBase}/${value}`;
  };
}

/** What the client receives from an upstream response's headers. */
export function rewriteResponseHeaders(
  headers: Headers,
  request: FastifyRequest,
  base: string,
  rewrite: ((value: string, publicBase: string) => string) | undefined,
): Headers {
  stripHopByHop(headers);
  if (rewrite && (headers.location !== undefined || headers['content-location'] !== undefined)) {
    const publicBase = `${request.protocol}://${request.headers.host ?? 'localhost'}${base}`;
    if (typeof headers.location === 'string') headers.location = rewrite(headers.location, publicBase);
    if (typeof headers['content-location'] === 'string') headers['content-location'] = rewrite(headers['content-location'], publicBase);
  }
  headers['x-request-id'] = request.id;
  return headers;
}
