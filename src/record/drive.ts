// Sends a workload's steps over HTTP to the proxy (recorded steps, background traffic) or
// straight to a worker's Unix socket (set-up), following `next` links for paged steps. Steps
// run on a few connections at once, as a proxy's clients do (default workloads are written
// so that no step depends on another's outcome). A step fails when the answer's status is
// not one it expects or the connection fails; every failure is kept with what came back.

import { Pool } from 'undici';
import type { Step } from './workload';

export interface Target {
  /** `http://127.0.0.1:8080` for the proxy, or any origin with socketPath set. */
  origin: string;
  socketPath?: string;
  /** FHIR base path on that origin: `/fhir` for the proxy, '' for a worker. */
  base: string;
}

export interface StepFailure {
  label: string;
  method: string;
  path: string;
  expected: number[];
  /** 0 when no HTTP answer came back. */
  status: number;
  detail: string;
}

export interface DriveResult {
  /** HTTP requests sent (paged steps count each page). */
  requests: number;
  steps: number;
  failures: StepFailure[];
  /**
   * `next` links answered 400: the server refused the link it made itself. Through the proxy
   * this means the proxy's validation refused the page parameters, so the request never
   * reached the worker (it says nothing about the worker's profiles); kept apart, reported.
   */
  pagesRefused: StepFailure[];
  /** How many answers per status. */
  statuses: Record<string, number>;
  ms: number;
}

export interface DriveOptions {
  /** Steps in flight at once (default 1: in order). */
  concurrency?: number;
  /** Stop taking new steps once this is aborted. */
  signal?: AbortSignal;
  /** Go round the steps until `signal` aborts (background traffic). */
  loop?: boolean;
}

function requestBody(s: Step): { body?: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { accept: 'application/fhir+json', ...(s.headers ?? {}) };
  if (s.body === undefined) return { headers };
  if (typeof s.body === 'string') return { body: s.body, headers };
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/fhir+json';
  return { body: JSON.stringify(s.body), headers };
}

/** The path after the base of a `next` link (links are absolute URLs on some origin). */
function nextPath(bundle: unknown, base: string): string | undefined {
  const links = (bundle as { link?: { relation?: string; url?: string }[] } | null)?.link;
  const url = Array.isArray(links) ? links.find((l) => l.relation === 'next')?.url : undefined;
  if (!url) return undefined;
  const u = new URL(url, 'http://localhost');
  const p = u.pathname.startsWith(`${base}/`) || u.pathname === base ? u.pathname.slice(base.length) : u.pathname;
  return `${p || '/'}${u.search}`;
}

async function runStep(pool: Pool, target: Target, s: Step, result: DriveResult): Promise<void> {
  const { body, headers } = requestBody(s);
  let path: string | undefined = s.path;
  let method = s.method;
  let pagesLeft = s.pages ?? 0;
  let first = true;
  while (path !== undefined) {
    result.requests++;
    let status = 0;
    let text = '';
    try {
      const res = await pool.request({ path: `${target.base}${path}`, method: method as 'GET', headers, ...(first && body !== undefined ? { body } : {}) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      text = (err as Error).message;
    }
    result.statuses[status] = (result.statuses[status] ?? 0) + 1;
    const ok = first ? s.expect.includes(status) : status === 200;
    if (!ok) {
      const failure = { label: s.label, method, path, expected: first ? s.expect : [200], status, detail: text.slice(0, 400) };
      (first || status !== 400 ? result.failures : result.pagesRefused).push(failure);
      return;
    }
    path = undefined;
    if (pagesLeft > 0 && status === 200) {
      pagesLeft--;
      try {
        path = nextPath(JSON.parse(text), target.base);
      } catch {
        path = undefined;
      }
      method = 'GET'; // a page link is read with GET, whatever asked for the first page
    }
    first = false;
  }
}

export async function drive(target: Target, steps: readonly Step[], o: DriveOptions = {}): Promise<DriveResult> {
  const concurrency = Math.max(1, o.concurrency ?? 1);
  const pool = new Pool(target.origin, {
    ...(target.socketPath ? { socketPath: target.socketPath } : {}),
    connections: concurrency,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
    keepAliveTimeout: 10_000,
  });
  const result: DriveResult = { requests: 0, steps: 0, failures: [], pagesRefused: [], statuses: {}, ms: 0 };
  const t0 = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (!o.signal?.aborted && steps.length > 0) {
      if (next >= steps.length) {
        if (!o.loop) return;
        next = 0;
      }
      const s = steps[next++];
      await runStep(pool, target, s, result);
      result.steps++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    await pool.close().catch(() => undefined);
    result.ms = Math.round(performance.now() - t0);
  }
  return result;
}
