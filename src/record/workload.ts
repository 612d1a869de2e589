// A recording workload: the requests that drive a tier while it is recorded (or while its
// recorded profiles are proved), and the set-up that must happen first, outside the
// recording (loading data through a writing worker, making a deleted and a versioned
// resource). Operators can write their own (`fhirguard record --workload <file>`) in this
// JSON shape; fhirguard's default workloads are made from the Synthea corpus.

import { readFileSync, writeFileSync } from 'node:fs';

export interface Step {
  method: string;
  /** Path and query after the FHIR base, e.g. `/Patient/123` or `/Observation?_count=5`. */
  path: string;
  headers?: Record<string, string>;
  /** JSON body (sent as application/fhir+json unless headers say otherwise), or raw text. */
  body?: unknown;
  /** Statuses that count as the interaction going as it should (errors included). */
  expect: number[];
  /** Follow `next` links of the returned Bundle this many times (paging). */
  pages?: number;
  /** What the step exercises, for reports: `read Patient 404`. */
  label: string;
  /** Answers differently when sent again (an update that creates): never repeated. */
  once?: boolean;
}

export interface Workload {
  /** Where it came from: `synthea recording half (10 patients)`, or the file name. */
  name: string;
  tier: string;
  /** Sent to a writing worker directly (not through the proxy, not recorded). */
  setup: Step[];
  /** Sent through the proxy to the tier's recorded worker. */
  steps: Step[];
  /**
   * Sent through the proxy to the other tiers, over and over while the steps run: the shared
   * database changes under the recorded worker as it does in production (a read worker meets
   * a writer's locks and journal). Their answers are counted, not checked.
   */
  background?: Step[];
}

export class WorkloadError extends Error {}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

function checkStep(s: unknown, where: string): Step {
  const fail = (msg: string): never => {
    throw new WorkloadError(`${where}: ${msg}`);
  };
  if (typeof s !== 'object' || s === null || Array.isArray(s)) fail('not an object');
  const o = s as Record<string, unknown>;
  if (typeof o.method !== 'string' || !METHODS.has(o.method.toUpperCase())) fail(`method must be one of ${[...METHODS].join(', ')}`);
  if (typeof o.path !== 'string' || !o.path.startsWith('/')) fail('path must start with / (relative to the FHIR base)');
  if (!Array.isArray(o.expect) || o.expect.length === 0 || !o.expect.every((n) => Number.isInteger(n) && n >= 100 && n <= 599)) {
    fail('expect must be a non-empty list of HTTP statuses');
  }
  if (o.headers !== undefined && (typeof o.headers !== 'object' || o.headers === null || !Object.values(o.headers).every((v) => typeof v === 'string'))) {
    fail('headers must map names to strings');
  }
  if (o.pages !== undefined && (!Number.isInteger(o.pages) || (o.pages as number) < 0)) fail('pages must be a whole number');
  const step: Step = {
    method: (o.method as string).toUpperCase(),
    path: o.path as string,
    expect: o.expect as number[],
    label: typeof o.label === 'string' ? o.label : `${(o.method as string).toUpperCase()} ${o.path as string}`,
  };
  if (o.headers !== undefined) step.headers = o.headers as Record<string, string>;
  if (o.body !== undefined) step.body = o.body;
  if (o.pages !== undefined) step.pages = o.pages as number;
  if (o.once === true) step.once = true;
  return step;
}

export function parseWorkload(json: unknown, file: string): Workload {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new WorkloadError(`${file}: not a JSON object`);
  const o = json as Record<string, unknown>;
  if (typeof o.tier !== 'string' || !o.tier) throw new WorkloadError(`${file}: tier must name the tier the workload drives`);
  if (!Array.isArray(o.steps) || o.steps.length === 0) throw new WorkloadError(`${file}: steps must be a non-empty list`);
  if (o.setup !== undefined && !Array.isArray(o.setup)) throw new WorkloadError(`${file}: setup must be a list`);
  if (o.background !== undefined && !Array.isArray(o.background)) throw new WorkloadError(`${file}: background must be a list`);
  return {
    name: typeof o.name === 'string' ? o.name : file,
    tier: o.tier,
    setup: ((o.setup as unknown[] | undefined) ?? []).map((s, i) => checkStep(s, `${file}: setup[${i}]`)),
    steps: o.steps.map((s, i) => checkStep(s, `${file}: steps[${i}]`)),
    ...(o.background ? { background: (o.background as unknown[]).map((s, i) => checkStep(s, `${file}: background[${i}]`)) } : {}),
  };
}

export function loadWorkload(file: string): Workload {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new WorkloadError(`${file}: ${(err as Error).message}`);
  }
  return parseWorkload(json, file);
}

export function saveWorkload(file: string, w: Workload): void {
  writeFileSync(file, JSON.stringify(w) + '\n');
}

/** A fixed permutation (mulberry32 seeded Fisher-Yates): the held-out order, the same every run. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
