// The entries of a batch or transaction: parsed into requests for the dispatcher, and the
// dispatcher's responses written back as Bundle.entry.response (R4 http §3.1.0.11).

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { FhirError, refuse } from '../../fhir/outcome';
import type { Json } from '../storage/store';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';

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

export interface Entry {
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

export function parseEntry(raw: unknown, index: number, base: string): Entry {
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

export function entryRequest(parent: FhirRequest, e: Entry, assignedId?: string): FhirRequest {
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

export function entryJson(res: FhirResponse, location?: string): string {
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

export function bundleJson(type: string, entries: string[]): string {
  return `{"resourceType":"Bundle","id":"${randomUUID()}","type":"${type}","entry":[${entries.join(',')}]}`;
}

export function errorOf(res: FhirResponse, e: Entry): FhirError {
  let issues: FhirError['issues'] = [];
  try {
    issues = (JSON.parse(res.body ?? '{}') as { issue?: FhirError['issues'] }).issue ?? [];
  } catch {
    issues = [];
  }
  const prefix = `Bundle.entry[${e.index}] (${e.method} ${e.url})`;
  const list = issues.length ? issues : [{ severity: 'error' as const, code: 'processing' as const, diagnostics: `status ${res.status}` }];
  return new FhirError(
    res.status,
    'transaction-entry',
    list.map((i) => ({ ...i, diagnostics: `${prefix}: ${i.diagnostics}` })),
  );
}

/** A refusal raised while preparing entry e, named after the entry. */
export function entryFailure(e: Entry, err: FhirError): FhirError {
  return errorOf({ status: err.status, body: JSON.stringify(err.toOutcome()) }, e);
}

/** Runs one entry; a refusal becomes the entry's response instead of an exception. */
export function runEntry(w: WorkerContext, req: FhirRequest, dispatch: Dispatch): FhirResponse {
  try {
    return dispatch(w, req);
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return { status: err.status, body: JSON.stringify(err.toOutcome()) };
  }
}
