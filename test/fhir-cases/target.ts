// What the shared FHIR interaction cases (test/fhir-cases/*) run against: a request function
// and the base URL the server names itself by. The same cases run straight at one writable
// worker (test/worker/rest.test.ts), through the proxy in front of plain workers
// (test/proxy/reference-worker.test.ts), and through the proxy in front of the agent's
// confined workers (test/enforce/fhir-suite-enforced.test.ts).

import { randomUUID } from 'node:crypto';
import { send } from '../helpers/http-client';
import { fhirRequest, type FhirResult } from '../helpers/worker-process';
import type { Json } from '../helpers/json';

export type { FhirResult };
export type { Json };

/** One FHIR request; `path` is relative to the FHIR base ('/Patient?x=y'; '/' is the base). */
export type FhirRequestFn = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<FhirResult>;

export interface FhirTarget {
  req: FhirRequestFn;
  /** The base the server names itself by in Location, fullUrl and Bundle links (no trailing slash). */
  base: string;
  /**
   * `worker`: straight at one writable worker, which sees every request.
   * `proxy`: through fhirguard's proxy and a policy with the shipped rules: it refuses what
   * it must (invalid bodies and parameters, what the policy denies) before any worker, and
   * routes each interaction to its tier (reads to read-only workers, bundles and operations
   * to the ops tier).
   */
  via: 'worker' | 'proxy';
}

export interface CaseOptions {
  /** Cases the target's server does not support, by test name, each with the reason (reported as skipped). */
  unsupported?: Readonly<Record<string, string>>;
}

const named = new Set<string>();

/** Names in `unsupported` that no case has: a renamed case must not leave a stale entry behind. */
export function staleUnsupported(o: CaseOptions): string[] {
  return Object.keys(o.unsupported ?? {}).filter((n) => !named.has(n));
}

/** `test`, but a case the target's server does not support is skipped, its reason in its name. */
export function caseTest(o: CaseOptions): (name: string, fn: () => Promise<void>, timeoutMs?: number) => void {
  return (name, fn, timeoutMs) => {
    named.add(name);
    const why = o.unsupported?.[name];
    // Skipped, not dropped: the case and the server's reason stay in every report, and
    // staleUnsupported() fails the suite when the list names a case that no longer exists.
    if (why) test.skip(`${name} [not supported by this server: ${why}]`, fn);
    else test(name, fn, timeoutMs);
  };
}

/** The cases are defined before the target exists (it starts in beforeAll): they get it by calling this. */
export type TargetOf = () => FhirTarget;

export function workerTarget(socket: string): FhirTarget {
  return { req: (method, path, body, headers) => fhirRequest(socket, method, path, body, headers), base: 'http://localhost', via: 'worker' };
}

/** Whether a request deletes: a DELETE, or a batch or transaction with a DELETE entry. */
export function deletes(method: string, body: unknown): boolean {
  const b = body as Json | undefined;
  if (method === 'DELETE') return true;
  return b?.resourceType === 'Bundle' && Array.isArray(b.entry) && b.entry.some((e: Json) => e?.request?.method === 'DELETE');
}

/**
 * A target through the proxy at `fhirUrl` (http://host:port/fhir). With `deletesVia` (a
 * second proxy whose policy allows deletes), requests that delete go there instead, so that
 * they reach a worker although the first proxy's policy refuses them.
 */
export function proxyTarget(fhirUrl: string, deletesVia?: string): FhirTarget {
  const req: FhirRequestFn = async (method, path, body, headers) => {
    const url = new URL(deletesVia && deletes(method, body) ? deletesVia : fhirUrl);
    const r = await send(url.origin, method, `${url.pathname}${path === '/' ? '' : path}`, { body: body as Buffer | string | object | undefined, headers });
    return { status: r.status, headers: r.headers, text: r.text, json: r.json };
  };
  return { req, base: fhirUrl, via: 'proxy' };
}

/** A request path (relative to the base) from a URL the server gave out (a next link, a Location). */
export function pathOf(t: FhirTarget, url: string): string {
  // `[base]/Patient?...`, `[base]?_getpages=...` (a server's own paging links, at the base), or
  // relative to the base (`Patient/1/_history/1`: a transaction response's location may be).
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) return `/${url.replace(/^\//, '')}`;
  if (!url.startsWith(`${t.base}/`) && !url.startsWith(`${t.base}?`)) throw new Error(`${url} is not on the base ${t.base}`);
  return url.slice(t.base.length);
}

export function patient(extra: Json = {}): Json {
  return { resourceType: 'Patient', name: [{ family: 'Testperson', given: ['Alex'] }], gender: 'other', birthDate: '1990-04-05', ...extra };
}

/** An identifier no other case uses, so searches by it see only this case's resources. */
export function uniqueIdentifier(): { system: string; value: string } {
  return { system: 'urn:fhirguard:test', value: randomUUID() };
}

/** An OperationOutcome with `status`; `diagnostics` matched against what its issues say. */
export function expectOutcome(res: FhirResult, status: number, diagnostics?: RegExp): void {
  expect({ status: res.status, type: res.json?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  expect(res.json.issue.length).toBeGreaterThan(0);
  // An issue names what was wrong in its diagnostics or its expression (`Bundle.entry[2]...`).
  if (diagnostics) expect(res.json.issue.map((i: Json) => [i.diagnostics, ...(i.expression ?? [])].join(' ')).join(' | ')).toMatch(diagnostics);
}

/** A success: the status, and on failure the OperationOutcome that came instead. */
export function expectStatus(res: FhirResult, status: number): void {
  expect({ status: res.status, outcome: res.status === status ? undefined : res.json }).toEqual({ status, outcome: undefined });
}

/** How many resources a search (without the leading slash) matches. */
export async function count(t: FhirTarget, query: string): Promise<number> {
  const res = await t.req('GET', `/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  expect({ query, status: res.status, outcome: res.status === 200 ? undefined : res.json }).toEqual({ query, status: 200, outcome: undefined });
  return res.json.total;
}

/** What differs by target: the worker's own answer, or the proxy's (it answers before any worker). */
export function byVia<T>(t: FhirTarget, worker: T, proxy: T): T {
  return t.via === 'worker' ? worker : proxy;
}
