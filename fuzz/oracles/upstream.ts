// What no upstream may ever see, decided from the request as the upstream received it and
// nothing else (not fhirguard's classifier or policy code): the campaign policy denies
// reading Practitioner, system history and every delete. Each rule below is sound (a hit is
// always a denied or unsafe request) though not complete: an unlabelled chain through a
// reference parameter (`general-practitioner.name`) is not recognised here, for instance.

import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { CASE_HEADER } from '../generate/case';
import { DENIED_TYPE } from '../harness/policy';
import type { SeenRequest } from '../harness/recording-upstream';
import { readStrictJson } from './strict-json';

export interface UpstreamViolation {
  oracle: string;
  detail: string;
}

const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url'];
const READS = new Set(['GET', 'HEAD']);

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Path segments as a lenient server reads them: decoded, %2F split, ';' parameters and dot segments resolved. */
export function serverSegments(path: string): string[] {
  const out: string[] = [];
  for (const raw of decode(decode(path)).replace(/\\/g, '/').split('/')) {
    const s = raw.split(';')[0];
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}

/**
 * Query parameters, decoded, split on '&' only: ';' is data to WHATWG URL parsing and to the
 * servlet containers behind most FHIR servers, so a ';'-joined parameter reaching upstream is
 * no violation by itself (docs/fuzz.md says why it still matters to a server that splits).
 */
function params(query: string): [string, string][] {
  return query
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      return (eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)]).map((x) => decode(x.replace(/\+/g, ' '))) as [string, string];
    });
}

/** Why a search's parameters reach the denied type, if they visibly do. */
function queryReach(ps: [string, string][]): string | undefined {
  for (const [n, v] of ps) {
    const name = n.split(':')[0];
    if (
      name === '_type' &&
      v
        .split(',')
        .map((t) => t.trim())
        .includes(DENIED_TYPE)
    )
      return `${n}=${v}`;
    if (name === '_include' && v.split(':')[2] === DENIED_TYPE) return `${n}=${v}`;
    if (name === '_revinclude' && v.split(':')[0] === DENIED_TYPE) return `${n}=${v}`;
    if (n.includes(`_has:${DENIED_TYPE}:`)) return n;
    if (n.includes(`:${DENIED_TYPE}.`)) return n;
    if (name === '_filter' || name === '_query') return `${n} (reaches every type)`;
  }
  return undefined;
}

/** The denied read a request is, if any: method, path and query as the upstream got them. */
function deniedRead(method: string, segs: string[], ps: [string, string][]): string | undefined {
  const search = READS.has(method) || (method === 'POST' && segs[segs.length - 1] === '_search');
  if (!search) return undefined;
  const s = segs[segs.length - 1] === '_search' ? segs.slice(0, -1) : segs;
  if (s.some((x) => x.startsWith('$'))) return undefined; // operations are decided by their own rule
  if (s[0] === DENIED_TYPE) return `${method} of ${DENIED_TYPE} (${s.join('/')})`;
  if (s.length === 3 && s[2] === DENIED_TYPE) return `compartment search of ${DENIED_TYPE}`;
  if (s.length === 1 && s[0] === '_history') return 'system history';
  if (s.length === 0 && !ps.some(([n]) => n === '_type')) return 'system search without _type';
  // Parameters widen searches only: a read or vread ignores them.
  const instance = s.length === 2 || (s.length === 4 && s[2] === '_history');
  if (instance && !(method === 'POST')) return undefined;
  const q = queryReach(ps);
  return q ? `search reaching ${DENIED_TYPE}: ${q}` : undefined;
}

function bodyBytes(r: SeenRequest): Buffer | string {
  const coding = String(r.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  if (coding === '' || coding === 'identity') return r.body;
  try {
    if (coding === 'gzip' || coding === 'x-gzip') return gunzipSync(r.body);
    if (coding === 'deflate') return inflateSync(r.body);
    if (coding === 'br') return brotliDecompressSync(r.body);
  } catch {
    return `Content-Encoding ${coding} forwarded with bytes that do not decode`;
  }
  return `Content-Encoding ${coding} forwarded`;
}

export function checkUpstreamRequest(r: SeenRequest): UpstreamViolation[] {
  const out: UpstreamViolation[] = [];
  const q = r.url.indexOf('?');
  const path = q < 0 ? r.url : r.url.slice(0, q);
  const ps = params(q < 0 ? '' : r.url.slice(q + 1));
  const segs = serverSegments(path);

  if (r.method === 'DELETE') out.push({ oracle: 'upstream-denied', detail: 'DELETE reached an upstream (the policy denies every delete)' });
  const denied = deniedRead(r.method.toUpperCase(), segs, ps);
  if (denied) out.push({ oracle: 'upstream-denied', detail: denied });
  if (ps.some(([n]) => n === '_method')) out.push({ oracle: 'upstream-override', detail: '_method parameter forwarded' });
  for (const h of OVERRIDE_HEADERS) if (r.headers[h] !== undefined) out.push({ oracle: 'upstream-override', detail: `${h} forwarded` });
  if (String(r.headers.forwarded ?? '').includes('fz-forwarded')) out.push({ oracle: 'upstream-override', detail: "the client's Forwarded forwarded" });
  if (r.headers.expect !== undefined) out.push({ oracle: 'upstream-expect', detail: `Expect: ${r.headers.expect} forwarded` });
  if (r.headers['transfer-encoding'] !== undefined && r.headers['content-length'] !== undefined)
    out.push({ oracle: 'upstream-framing', detail: 'both Transfer-Encoding and Content-Length forwarded' });
  if (['PUT', 'PATCH'].includes(r.method) && segs.length === 1 && ps.length === 0) out.push({ oracle: 'upstream-denied', detail: `${r.method} /${segs[0]} without criteria (a write to every match)` });

  if (r.body.length > 0 && segs[segs.length - 1] === '_search') out.push(...checkSearchBody(r, segs, ps));
  else if (r.body.length > 0) out.push(...checkBody(r, segs));
  return out;
}

/** A POSTed search's body holds form parameters: they widen the search like the URL's. */
function checkSearchBody(r: SeenRequest, segs: string[], urlParams: [string, string][]): UpstreamViolation[] {
  const type = String(r.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return [{ oracle: 'upstream-body', detail: `a _search body that is not form parameters (content-type '${type}') forwarded` }];
  const denied = deniedRead('POST', segs, [...urlParams, ...params(r.body.toString('latin1'))]);
  return denied ? [{ oracle: 'upstream-denied', detail: `${denied} (form body)` }] : [];
}

function checkBody(r: SeenRequest, segs: string[]): UpstreamViolation[] {
  const bytes = bodyBytes(r);
  if (typeof bytes === 'string') return [{ oracle: 'upstream-body', detail: bytes }];
  const json = readStrictJson(bytes);
  if (!json.ok) return [{ oracle: 'upstream-body', detail: `forwarded body is not unambiguous JSON: ${json.why}` }];
  const doc = json.value as Record<string, unknown> | null;
  const out: UpstreamViolation[] = [];
  const isWrite = (r.method === 'POST' || r.method === 'PUT') && segs.length >= 1 && segs.length <= 2 && !segs.some((s) => s.startsWith('$') || s === '_search');
  if (isWrite && doc && typeof doc === 'object' && !Array.isArray(doc) && doc.resourceType !== segs[0]) {
    out.push({ oracle: 'upstream-body', detail: `${r.method} /${segs.join('/')} forwarded a ${String(doc.resourceType)}` });
  }
  const bundle = doc as { resourceType?: unknown; type?: unknown; entry?: unknown } | null;
  // Entries run only in a batch or transaction POSTed to the base; a Bundle created as a resource holds them as data.
  if (segs.length === 0 && bundle && bundle.resourceType === 'Bundle' && (bundle.type === 'batch' || bundle.type === 'transaction') && Array.isArray(bundle.entry)) {
    for (const [i, e] of (bundle.entry as unknown[]).entries()) {
      const req = (e as { request?: { method?: string; url?: string } } | null)?.request;
      if (!req || typeof req.url !== 'string') continue;
      const [p, qs] = req.url.split('?');
      if (req.method === 'DELETE') out.push({ oracle: 'upstream-denied', detail: `Bundle.entry[${i}] DELETE ${req.url} forwarded` });
      const d = deniedRead(String(req.method), serverSegments(p), params(qs ?? ''));
      if (d) out.push({ oracle: 'upstream-denied', detail: `Bundle.entry[${i}]: ${d}` });
    }
  }
  return out;
}

/** The campaign case an upstream request belongs to, when its header survived. */
export function caseOf(r: SeenRequest): number | undefined {
  const v = r.headers[CASE_HEADER];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) ? n : undefined;
}
