// Header hygiene at the front door. Hop-by-hop headers (RFC 9110 §7.6.1) describe one
// connection and never cross the proxy, in either direction; X-Forwarded-* tell the
// upstream who asked; Location and Content-Location from an upstream are rewritten to the
// public base so clients never see an internal address.

import type { FastifyRequest } from 'fastify';
import type { Upstream } from './address';

type Headers = Record<string, string | string[] | number | undefined>;

const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Connection values that name no header beyond the hop-by-hop ones: what every keep-alive
 * upstream sends. Recognised as they are, without building the set of names on every
 * response.
 */
const PLAIN_CONNECTION: ReadonlySet<string> = new Set(['keep-alive', 'Keep-Alive', 'close', 'Close']);

/** The header names a Connection header lists, lower-cased. */
function connectionNamed(value: string): Set<string> {
  return new Set(value.split(',').map((n) => n.trim().toLowerCase()));
}

/**
 * The end-to-end headers of `headers`, as a new object. Copying what stays is cheaper than
 * deleting what goes: a delete turns the object into a slow dictionary for every later
 * access (bench:proxy's profile showed the deletes costing a read several times the copy).
 */
function endToEnd(headers: Headers, alsoDrop?: ReadonlySet<string>): Headers {
  // The Connection header may name further headers that are hop-by-hop for this connection.
  const connection = headers.connection;
  const named = connection === undefined || PLAIN_CONNECTION.has(connection as string) ? undefined : connectionNamed(String(connection));
  const out: Headers = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || alsoDrop?.has(name) || named?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * Client headers never forwarded besides the hop-by-hop ones, because each would make the
 * server do something other than what fhirguard decided:
 * - Expect: fhirguard meets the expectation itself (the listener sends 100 Continue, anything
 *   else is refused with 417); the body it forwards is already complete.
 * - The method overrides servers honour (X-HTTP-Method-Override, X-HTTP-Method,
 *   X-Method-Override): a POST decided as a search must not run as a DELETE or PATCH.
 * - Path overrides (X-Original-URL, X-Rewrite-URL): the path decided is the one forwarded.
 * - Forwarded and the X-Forwarded-* fhirguard does not set itself (Host, Port, Ssl, Server),
 *   X-Real-IP and Front-End-Https: who asked, and at which address, is fhirguard's to say (it
 *   sets X-Forwarded-For/Proto/Host/Prefix). Servers build their own URLs from these (the
 *   links in a search's Bundle, say), so a client's own value never passes.
 * Without a body (a body on GET, say, is dropped) no length must be announced either.
 */
export const NEVER_FORWARDED: readonly string[] = [
  'expect',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-original-url',
  'x-rewrite-url',
  'forwarded',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-ssl',
  'x-forwarded-server',
  'x-real-ip',
  'front-end-https',
];
const DROP_WITH_BODY: ReadonlySet<string> = new Set(NEVER_FORWARDED);
const DROP_WITHOUT_BODY: ReadonlySet<string> = new Set([...NEVER_FORWARDED, 'content-length']);
// With authorization the front door is where the token is checked: the backend never gets it
// (a backend that is taken over must not be able to replay clients' tokens elsewhere).
const DROP_WITH_BODY_AND_TOKEN: ReadonlySet<string> = new Set([...DROP_WITH_BODY, 'authorization']);
const DROP_WITHOUT_BODY_AND_TOKEN: ReadonlySet<string> = new Set([...DROP_WITHOUT_BODY, 'authorization']);

/** What the upstream receives: the client's end-to-end headers plus who asked; `dropToken` leaves Authorization out. */
export function forwardRequestHeaders(request: FastifyRequest, headers: Headers, base: string, hasBody: boolean, dropToken = false): Headers {
  const drop = dropToken ? (hasBody ? DROP_WITH_BODY_AND_TOKEN : DROP_WITHOUT_BODY_AND_TOKEN) : hasBody ? DROP_WITH_BODY : DROP_WITHOUT_BODY;
  const out = endToEnd(headers, drop);
  const prior = request.headers['x-forwarded-for'];
  out['x-forwarded-for'] = typeof prior === 'string' && prior ? `${prior}, ${request.ip}` : request.ip;
  out['x-forwarded-proto'] = request.protocol;
  const host = request.headers.host;
  if (host) out['x-forwarded-host'] = host;
  out['x-forwarded-prefix'] = base;
  out['x-request-id'] = request.id;
  return out;
}

/** Rewrites an upstream URL (Location, Content-Location) to the public base. */
export type LocationRewrite = (value: string, publicBase: string) => string;

/** Builds the rewrite of upstream URLs (absolute on a member, or relative) to the public base. */
export function locationRewriter(members: readonly Upstream[]): LocationRewrite {
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
export function rewriteResponseHeaders(headers: Headers, request: FastifyRequest, base: string, rewrite: LocationRewrite | undefined): Headers {
  const out = endToEnd(headers);
  if (rewrite && (out.location !== undefined || out['content-location'] !== undefined)) {
    const publicBase = `${request.protocol}://${request.headers.host ?? 'localhost'}${base}`;
    if (typeof out.location === 'string') out.location = rewrite(out.location, publicBase);
    if (typeof out['content-location'] === 'string') out['content-location'] = rewrite(out['content-location'], publicBase);
  }
  out['x-request-id'] = request.id;
  return out;
}
