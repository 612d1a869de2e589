// What every REST handler gets and returns. A handler works on one parsed request and
// returns a response value; the HTTP layer (../http) and batch/transaction processing
// (./batch.ts) are the two callers, so an entry of a batch is handled exactly like the
// same request sent alone.

import type { IncomingHttpHeaders } from 'node:http';
import type { Issue } from '../../fhir/outcome';
import type { ResourceStore } from '../storage/store';

export interface WorkerContext {
  store: ResourceStore;
  readOnly: boolean;
  /** Patient compartment: resource type → parameters linking it to the Patient. */
  patientCompartment: ReadonlyMap<string, readonly string[]>;
}

export type PreferReturn = 'minimal' | 'representation' | 'OperationOutcome';

export interface FhirRequest {
  method: string;
  /** Path segments after the root, already split and decoded. */
  segments: string[];
  query: [string, string][];
  headers: IncomingHttpHeaders;
  /** Parsed JSON body (or form fields for `_search`), undefined when there is none. */
  body: unknown;
  /** Absolute base URL of this server as the client sees it, without a trailing slash. */
  base: string;
  prefer: PreferReturn;
  /** Set by transaction processing: the id a create must use (its fullUrl was mapped to it). */
  assignedId?: string;
}

export interface FhirResponse {
  status: number;
  headers?: Record<string, string>;
  /** A resource or OperationOutcome, as JSON text. */
  body?: string;
  /** The version a read or write produced, for batch/transaction entry responses. */
  version?: { type: string; id: string; version: number; lastUpdated: number };
}

export function json(status: number, body: unknown, headers?: Record<string, string>): FhirResponse {
  return { status, body: JSON.stringify(body), ...(headers ? { headers } : {}) };
}

export function outcomeBody(issues: Issue[]): string {
  return JSON.stringify({ resourceType: 'OperationOutcome', issue: issues });
}

export function info(diagnostics: string, code: Issue['code'] = 'informational'): Issue {
  return { severity: 'information', code, diagnostics };
}

export function etag(version: number | string): string {
  return `W/"${version}"`;
}

/** `W/"3"`, `"3"` or `3` → `3`. */
export function parseETag(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header[0] : header;
  const m = /^\s*(?:W\/)?"?([^"]*)"?\s*$/.exec(text);
  return m ? m[1] : text;
}

/** A response carrying one version of a resource. */
export function versionResponse(status: number, base: string, v: { type: string; id: string; version: number; lastUpdated: number }, body?: string): FhirResponse {
  return { status, headers: versionHeaders(base, v.type, v.id, v.version, v.lastUpdated), ...(body !== undefined ? { body } : {}), version: v };
}

/** Headers that describe one version of a resource. */
export function versionHeaders(base: string, type: string, id: string, version: number, lastUpdated: number): Record<string, string> {
  return {
    ETag: etag(version),
    'Last-Modified': new Date(lastUpdated).toUTCString(),
    'Content-Location': `${base}/${type}/${id}/_history/${version}`,
  };
}
