// A batch or transaction (a Bundle POSTed to the base) and the interaction of each entry.
// Every entry's `request.method` + `request.url` is classified with the same classifier as a
// top-level request, so policy can decide each one; a problem in any entry refuses the whole
// Bundle with 400 naming the entry. `request.url` is relative to the base (a leading '/' is
// read as base-relative too); an absolute URL is accepted only when it names this server's
// own base (same Host header and base path), since fhirguard forwards the Bundle whole and a
// worker must not be asked to act on another server's URLs.

import type { IncomingHttpHeaders } from 'node:http';
import type { Interaction } from './interaction';
import { FhirError, refuse } from './outcome';
import { MAX_PATH_LENGTH, shown } from './path';
import type { RequestView } from './classify';

/** `Bundle.entry.request.method` codes (http://hl7.org/fhir/R4/valueset-http-verb.html). */
const ENTRY_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH']);

/** Longest `request.url` considered: a path plus a generous query. */
const MAX_ENTRY_URL = MAX_PATH_LENGTH + 8192;

export interface ClassifiedBundle {
  type: 'batch' | 'transaction';
  entries: Interaction[];
}

function badBundle(diagnostics: string, expression?: string): FhirError {
  return refuse(400, 'bad-bundle', 'invalid', diagnostics, expression ? [expression] : undefined);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function startsWithIgnoreCase(s: string, prefix: string): boolean {
  return s.length >= prefix.length && s.slice(0, prefix.length).toLowerCase() === prefix;
}

/** The part of an entry URL below this server's base, or a refusal. */
function relativeUrl(url: string, req: RequestView, where: string): string {
  const scheme = startsWithIgnoreCase(url, 'https://') ? 8 : startsWithIgnoreCase(url, 'http://') ? 7 : 0;
  if (scheme === 0) {
    // A scheme is a colon before any '/' in the path; the query may hold colons of its own
    // (token systems, canonical URLs: `Patient?identifier=urn:oid:1.2.3|42`).
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const colon = path.indexOf(':');
    const slash = path.indexOf('/');
    if (colon >= 0 && (slash < 0 || colon < slash)) {
      throw badBundle(`${where}: '${shown(url)}' is not a URL relative to the FHIR base`, `${where}.url`);
    }
    return url;
  }
  const host = req.headers.host;
  const slash = url.indexOf('/', scheme);
  const authority = slash < 0 ? url.slice(scheme) : url.slice(scheme, slash);
  const rest = slash < 0 ? '' : url.slice(slash);
  const base = req.base === undefined || req.base === '/' ? '' : req.base.replace(/\/$/, '');
  const ours = req.base !== undefined && typeof host === 'string' && authority.toLowerCase() === host.toLowerCase() && (rest === base || rest.startsWith(`${base}/`) || rest.startsWith(`${base}?`));
  if (!ours) {
    throw badBundle(`${where}: '${shown(url)}' points at another server; entry URLs must be relative to this FHIR base`, `${where}.url`);
  }
  return rest.slice(base.length);
}

/** Classifies one entry; any refusal becomes a 400 for the Bundle that names the entry. */
function classifyOne(entry: unknown, index: number, req: RequestView, classifyEntry: (r: RequestView) => Interaction): Interaction {
  const where = `Bundle.entry[${index}].request`;
  if (!isObject(entry) || !isObject(entry.request)) throw badBundle(`${where} is required in a batch or transaction`, where);
  const { method, url, ifNoneExist } = entry.request;
  if (typeof method !== 'string' || !ENTRY_METHODS.has(method)) {
    throw badBundle(`${where}.method must be one of ${[...ENTRY_METHODS].join(', ')}`, `${where}.method`);
  }
  if (typeof url !== 'string' || url === '') throw badBundle(`${where}.url is required`, `${where}.url`);
  if (url.length > MAX_ENTRY_URL) throw badBundle(`${where}.url is longer than ${MAX_ENTRY_URL} characters`, `${where}.url`);
  if (url.includes('#')) throw badBundle(`${where}.url must not carry a fragment`, `${where}.url`);
  if (ifNoneExist !== undefined && typeof ifNoneExist !== 'string') throw badBundle(`${where}.ifNoneExist must be a string`, `${where}.ifNoneExist`);
  const relative = relativeUrl(url, req, where);
  const q = relative.indexOf('?');
  const headers: IncomingHttpHeaders = ifNoneExist === undefined ? {} : { 'if-none-exist': ifNoneExist };
  const view: RequestView = {
    method,
    path: q < 0 ? relative : relative.slice(0, q),
    query: q < 0 ? '' : relative.slice(q + 1),
    headers,
    body: entry.resource,
  };
  try {
    return classifyEntry(view);
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    // Inside a Bundle nothing was "not found" or "not allowed" at the HTTP level: the Bundle is invalid.
    throw new FhirError(
      400,
      err.reason,
      err.issues.map((i) => ({ ...i, diagnostics: `${where} (${method} ${shown(url)}): ${i.diagnostics}`, expression: [`${where}.url`] })),
    );
  }
}

/**
 * Reads a Bundle POSTed to the base: its type (batch or transaction) and the interaction of
 * each entry, in entry order. Throws 400 bad-bundle for anything else.
 */
export function classifyBundle(body: unknown, req: RequestView, classifyEntry: (r: RequestView) => Interaction): ClassifiedBundle {
  if (!isObject(body) || body.resourceType !== 'Bundle') {
    throw badBundle('a POST to the FHIR base needs a batch or transaction Bundle as its body');
  }
  const type = body.type;
  if (type !== 'batch' && type !== 'transaction') {
    throw badBundle(`a Bundle POSTed to the FHIR base must be a batch or transaction, not '${shown(String(type))}'`, 'Bundle.type');
  }
  const list = body.entry;
  if (list === undefined) return { type, entries: [] };
  if (!Array.isArray(list)) throw badBundle('Bundle.entry must be an array', 'Bundle.entry');
  const entries = new Array<Interaction>(list.length);
  for (let k = 0; k < list.length; k++) entries[k] = classifyOne(list[k], k, req, classifyEntry);
  return { type, entries };
}
