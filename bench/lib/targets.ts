// Where each variant sends a workload: the worker's Unix socket (direct), the bare proxy of the
// workload's tier (bare), or a fhirguard system's proxy; and which processes' CPU time counts.

import { Client } from 'undici';
import type { WorkerInfo } from '../../src/agent-api/client';
import type { LoadConfig } from './loadgen';
import type { Enforcement, System } from './system';
import { SYSTEM_OF, type VariantId } from './variants';
import type { Workload } from './workloads';

export interface Target {
  origin: string;
  socketPath?: string;
  /** Prefix of the FHIR base on the target ('' for a worker, '/fhir' for the proxies). */
  base: string;
  /** The processes whose CPU time counts for this target: the proxy in front, and the workers. */
  pids(): Promise<number[]>;
}

/** What the benchmark started: the systems by enforcement, the bare proxies by tier. */
export interface Fleet {
  systems: Map<Enforcement, System>;
  /** The unconfined system's workers: direct's and bare's. */
  plainWorkers: WorkerInfo[];
  bare: Map<string, { port: number; pid: number }>;
}

export function workerOf(ws: WorkerInfo[], tier: string): WorkerInfo {
  const w = ws.find((x) => x.tier === tier && x.state === 'serving');
  if (!w) throw new Error(`no serving worker of tier ${tier}`);
  return w;
}

export function targetOf(f: Fleet, v: VariantId, w: Workload): Target {
  const sys = f.systems.get(SYSTEM_OF[v])!;
  const workers = (): Promise<number[]> => sys.workerPids();
  if (v === 'direct') return { origin: 'http://localhost', socketPath: workerOf(f.plainWorkers, w.tier).socketPath, base: '', pids: workers };
  if (v === 'bare') {
    const b = f.bare.get(w.tier)!;
    return { origin: `http://127.0.0.1:${b.port}`, base: '/fhir', pids: async () => [b.pid, ...(await workers())] };
  }
  const u = new URL(sys.url);
  return { origin: u.origin, base: u.pathname.replace(/\/$/, ''), pids: async () => [sys.proxy.pid!, ...(await workers())] };
}

/** The load generator's configuration for `w` on `t`. */
export function loadConfig(t: Target, w: Workload, seconds: number, warmupSeconds: number): LoadConfig {
  return {
    origin: t.origin,
    socketPath: t.socketPath,
    requests: w.requests.map((r) => ({ method: r.method, path: t.base + r.path, body: r.body, headers: r.body ? { 'content-type': 'application/fhir+json' } : undefined })),
    connections: w.connections,
    seconds,
    warmupSeconds,
    timeoutSeconds: 60,
  };
}

/** One request of the workload, answered 2xx, or the benchmark stops before measuring anything. */
export async function probe(v: VariantId, w: Workload, t: Target): Promise<void> {
  const client = new Client(t.origin, t.socketPath ? { socketPath: t.socketPath } : {});
  try {
    const q = w.requests[0];
    const res = await client.request({
      method: q.method,
      path: t.base + q.path,
      headers: { accept: 'application/fhir+json', ...(q.body ? { 'content-type': 'application/fhir+json' } : {}) },
      body: q.body,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`${v} / ${w.name}: ${q.method} ${t.base + q.path} answered ${res.statusCode}: ${text.slice(0, 400)}`);
  } finally {
    await client.close();
  }
}
