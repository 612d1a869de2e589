// batch and transaction (POST of a Bundle to the root). Each entry is an ordinary request
// handed to the same dispatcher as HTTP requests. A batch runs entries independently, each
// in its own transaction; a transaction runs all of them in one SQLite transaction, in the
// R4 order (DELETE, POST, PUT/PATCH, GET), after resolving every fullUrl and conditional
// reference, and any failing entry rolls back the whole of it.

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { FhirError, refuse } from '../../fhir/outcome';
import { parseLocalReference } from '../indexing/references';
import { parseCriteria } from '../search/parse';
import { matchingRids } from '../search/run';
import type { Json } from '../storage/store';
import type { FhirRequest, FhirResponse, WorkerContext } from './context';
import { rewriteReferences, rewriteText, type ConditionalResolver } from './transaction-references';

export type Dispatch = (w: WorkerContext, req: FhirRequest) => FhirResponse;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  422: 'Unprocessable Entity',
};

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
/** R4 transaction processing order. */
const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface Entry {
  index: number;
  fullUrl?: string;
  method: string;
  /** Path and query as given, for messages. */
  url: string;
  path: string;
  query: [string, string][];
  /** The resource, or for PATCH the decoded JSON Patch. */
  body?: unknown;
  headers: IncomingHttpHeaders;
}

function entryError(index: number, diagnostics: string): FhirError {
  return refuse(400, 'bad-bundle', 'invalid', `Bundle.entry[${index}]: ${diagnostics}`);
}

function parseEntry(raw: unknown, index: number, base: string): Entry {
  if (!raw || typeof raw !== 'object') throw entryError(index, 'is not an object');
  const e = raw as Json;
  const request = e.request as Json | undefined;
  if (!request || typeof request !== 'object') throw entryError(index, 'has no request');
  const method = request.method;
  if (typeof method !== 'string' || !METHODS.has(method)) throw entryError(index, `request.method '${String(method)}' is not a FHIR method`);
  if (typeof request.url !== 'string' || !request.url) throw entryError(index, 'has no request.url');
  let url: string = request.url;
  if (url.startsWith(base + '/')) url = url.slice(base.length + 1);
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) throw entryError(index, `request.url '${url}' is not a URL of this server`);
  url = url.replace(/^\/+/, '');
  const q = url.indexOf('?');
  const headers: IncomingHttpHeaders = {};
  for (const [field, header] of [
    ['ifNoneExist', 'if-none-exist'],
    ['ifMatch', 'if-match'],
    ['ifNoneMatch', 'if-none-match'],
    ['ifModifiedSince', 'if-modified-since'],
  ]) {
    if (typeof request[field] === 'string') headers[header] = request[field] as string;
  }
  const resource = e.resource;
  if (resource !== undefined && (typeof resource !== 'object' || resource === null || Array.isArray(resource))) {
    throw entryError(index, 'resource is not an object');
  }
  const body = method === 'PATCH' ? patchBody(resource as Json | undefined, index) : resource;
  return {
    index,
    ...(typeof e.fullUrl === 'string' ? { fullUrl: e.fullUrl } : {}),
    method,
    url,
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? [] : [...new URLSearchParams(url.slice(q + 1))],
    ...(body !== undefined ? { body } : {}),
    headers,
  };
}

/** A PATCH entry carries its JSON Patch as a Binary (R4 http §3.1.0.11). */
function patchBody(resource: Json | undefined, index: number): unknown {
  if (!resource || resource.resourceType !== 'Binary' || typeof resource.data !== 'string' || !/json-patch\+json/.test(String(resource.contentType))) {
    throw entryError(index, 'a PATCH entry carries its JSON Patch as a Binary with contentType application/json-patch+json');
  }
  try {
    return JSON.parse(Buffer.from(resource.data, 'base64').toString('utf8'));
  } catch {
    throw entryError(index, 'the Binary of a PATCH entry does not hold JSON');
  }
}

function entryRequest(parent: FhirRequest, e: Entry, assignedId?: string): FhirRequest {
  let segments: string[];
  try {
    segments = e.path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw entryError(e.index, `request.url '${e.url}' is not a valid URL`);
  }
  if (!segments.length) throw entryError(e.index, 'an entry cannot itself be a batch or transaction');
  const explicitPrefer = parent.headers.prefer !== undefined;
  return {
    method: e.method,
    segments,
    query: e.query,
    headers: e.headers,
    body: e.body,
    base: parent.base,
    // Bundle responses carry only the response elements unless the client asked otherwise.
    prefer: explicitPrefer || e.method === 'GET' || e.method === 'HEAD' ? parent.prefer : 'minimal',
    ...(assignedId ? { assignedId } : {}),
  };
}

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
}

function isOutcome(body: string): boolean {
  return body.startsWith('{"resourceType":"OperationOutcome"');
}

function entryJson(res: FhirResponse, location?: string): string {
  const response: Json = { status: statusLine(res.status) };
  const loc = location ?? res.headers?.Location;
  if (loc) response.location = loc;
  if (res.version) {
    response.etag = `W/"${res.version.version}"`;
    response.lastModified = new Date(res.version.lastUpdated).toISOString();
  }
  let text = JSON.stringify(response);
  let resource = '';
  if (res.body) {
    if (isOutcome(res.body)) text = text.slice(0, -1) + `,"outcome":${res.body}}`;
    else resource = `"resource":${res.body},`;
  }
  return `{${resource}"response":${text}}`;
}

function bundleJson(type: string, entries: string[]): string {
  return `{"resourceType":"Bundle","id":"${randomUUID()}","type":"${type}","entry":[${entries.join(',')}]}`;
}

function errorOf(res: FhirResponse, e: Entry): FhirError {
  let issues: FhirError['issues'] = [];
  try {
    issues = (JSON.parse(res.body ?? '{}') as { issue?: FhirError['issues'] }).issue ?? [];
  } catch {
    issues = [];
  }
  const prefix = `Bundle.entry[${e.index}] (${e.method} ${e.url})`;
  const list = issues.length ? issues : [{ severity: 'error' as const, code: 'processing' as const, diagnostics: `status ${res.status}` }];
  return new FhirError(res.status, 'transaction-entry', list.map((i) => ({ ...i, diagnostics: `${prefix}: ${i.diagnostics}` })));
}

/** A refusal raised while preparing entry e, named after the entry. */
function entryFailure(e: Entry, err: FhirError): FhirError {
  return errorOf({ status: err.status, body: JSON.stringify(err.toOutcome()) }, e);
}

/** Runs one entry; a refusal becomes the entry's response instead of an exception. */
function runEntry(w: WorkerContext, req: FhirRequest, dispatch: Dispatch): FhirResponse {
  try {
    return dispatch(w, req);
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return { status: err.status, body: JSON.stringify(err.toOutcome()) };
  }
}

function processBatch(w: WorkerContext, req: FhirRequest, raw: unknown[], dispatch: Dispatch): FhirResponse {
  const out = raw.map((item, index) => {
    let res: FhirResponse;
    try {
      res = runEntry(w, entryRequest(req, parseEntry(item, index, req.base)), dispatch);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      res = { status: err.status, body: JSON.stringify(err.toOutcome()) };
    }
    return entryJson(res);
  });
  return { status: 200, body: bundleJson('batch-response', out) };
}

function processTransaction(w: WorkerContext, req: FhirRequest, raw: unknown[], dispatch: Dispatch): FhirResponse {
  const entries = raw.map((item, index) => parseEntry(item, index, req.base));
  const results = new Array<string>(entries.length);
  const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
  const resolve: ConditionalResolver = (type, query) => {
    const rids = matchingRids(w.store, type, parseCriteria(type, query), undefined, 2);
    const rows = w.store.rows(rids);
    if (rows.length === 1) return rows[0].id;
    throw rows.length
      ? refuse(412, 'multiple-matches', 'multiple-matches', `the conditional reference ${type}?${new URLSearchParams(query)} matches more than one resource`)
      : refuse(404, 'not-found', 'not-found', `the conditional reference ${type}?${new URLSearchParams(query)} matches no resource`);
  };
  const run = (e: Entry, assignedId?: string): FhirResponse => {
    const res = runEntry(w, entryRequest(req, e, assignedId), dispatch);
    if (res.status >= 400) throw errorOf(res, e);
    return res;
  };

  return w.store.transaction(() => {
    const map = new Map<string, string>();
    const touched = new Map<string, number>();
    const touch = (ref: string, e: Entry): void => {
      const other = touched.get(ref);
      if (other !== undefined) {
        const [a, b] = [other, e.index].sort((x, y) => x - y);
        throw refuse(400, 'bad-bundle', 'invalid', `Bundle.entry[${a}] and Bundle.entry[${b}] both change ${ref}`);
      }
      touched.set(ref, e.index);
    };
    const identity = new Map<Entry, { id: string; existing: boolean }>();

    // 1. Deletes (conditional ones resolve against the database as it was).
    for (const e of ordered.filter((e) => e.method === 'DELETE')) {
      if (!e.query.length) touch(e.path, e);
      results[e.index] = entryJson(run(e));
    }
    // 2. The identity of every created or updated resource, so references can be rewritten.
    for (const e of ordered) {
      if (e.method === 'POST' && e.path.indexOf('/') < 0) {
        const type = e.path;
        let id: string = randomUUID();
        let existing = false;
        const ifNoneExist = e.headers['if-none-exist'];
        if (ifNoneExist !== undefined) {
          const query = [...new URLSearchParams(rewriteText(String(ifNoneExist), map).replace(/^[^?]*\?/, ''))];
          const rows = w.store.rows(matchingRids(w.store, type, parseCriteria(type, query), undefined, 2));
          if (rows.length > 1) throw entryFailure(e, refuse(412, 'multiple-matches', 'multiple-matches', `If-None-Exist matches more than one ${type}`));
          if (rows.length === 1) {
            id = rows[0].id;
            existing = true;
          }
        }
        identity.set(e, { id, existing });
        if (!existing) touch(`${type}/${id}`, e);
        if (e.fullUrl) map.set(e.fullUrl, `${type}/${id}`);
      } else if (e.method === 'PUT') {
        if (!e.query.length) {
          const local = parseLocalReference(e.path);
          if (local) {
            touch(e.path, e);
            if (e.fullUrl) map.set(e.fullUrl, e.path);
          }
          continue;
        }
        // Conditional update: resolved now and then run as an update of that id.
        const type = e.path;
        const query = e.query.map(([k, v]) => [k, rewriteText(v, map)] as [string, string]);
        const rows = w.store.rows(matchingRids(w.store, type, parseCriteria(type, query), undefined, 2));
        if (rows.length > 1) throw entryFailure(e, refuse(412, 'multiple-matches', 'multiple-matches', `the criteria match more than one ${type}`));
        const resource = e.body as Json | undefined;
        const bodyId = typeof resource?.id === 'string' ? resource.id : undefined;
        const id = rows[0]?.id ?? bodyId ?? randomUUID();
        if (rows.length && bodyId !== undefined && bodyId !== id) {
          throw entryFailure(e, refuse(400, 'id-mismatch', 'invalid', `body id '${bodyId}' is not the id of the matching ${type} (${id})`));
        }
        e.path = `${type}/${id}`;
        e.query = [];
        if (resource && typeof resource === 'object') resource.id = id;
        touch(e.path, e);
        if (e.fullUrl) map.set(e.fullUrl, e.path);
      } else if (e.method === 'PATCH' && !e.query.length) {
        touch(e.path, e);
      }
    }
    // 3. Rewrite references and entry URLs.
    for (const e of entries) {
      const where = `Bundle.entry[${e.index}]`;
      try {
        if (e.body) rewriteReferences(e.body, map, resolve, where);
      } catch (err) {
        if (err instanceof FhirError) throw entryFailure(e, err);
        throw err;
      }
      e.query = e.query.map(([k, v]) => [k, rewriteText(v, map)]);
      if (e.headers['if-none-exist']) e.headers['if-none-exist'] = rewriteText(String(e.headers['if-none-exist']), map);
    }
    // 4. Creates, updates and patches, then reads.
    for (const e of ordered) {
      if (e.method === 'DELETE') continue;
      const id = identity.get(e);
      if (id?.existing) {
        // If-None-Exist matched: nothing is created; the response names the existing resource.
        const found = w.store.current(e.path, id.id)!;
        const v = { type: e.path, id: id.id, version: found.version, lastUpdated: found.lastUpdated };
        results[e.index] = entryJson({ status: 200, version: v }, `${req.base}/${e.path}/${id.id}/_history/${found.version}`);
        continue;
      }
      if (id) delete e.headers['if-none-exist'];
      results[e.index] = entryJson(run(e, id?.id));
    }
    return { status: 200, body: bundleJson('transaction-response', results) };
  });
}

export function processBundle(w: WorkerContext, req: FhirRequest, dispatch: Dispatch): FhirResponse {
  const bundle = req.body as Json | undefined;
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle) || bundle.resourceType !== 'Bundle') {
    throw refuse(400, 'bad-bundle', 'invalid', 'POST to the system endpoint takes a Bundle of type batch or transaction');
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw refuse(400, 'bad-bundle', 'invalid', `Bundle.type '${String(bundle.type)}' cannot be processed; only batch and transaction can`, ['Bundle.type']);
  }
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw refuse(400, 'bad-bundle', 'invalid', 'Bundle.entry must be an array', ['Bundle.entry']);
  const raw = (bundle.entry as unknown[] | undefined) ?? [];
  return bundle.type === 'batch' ? processBatch(w, req, raw, dispatch) : processTransaction(w, req, raw, dispatch);
}
