// The load generator: autocannon in a process of its own (so it shares no event loop with
// what it measures), pinned with taskset where a CPU plan says so. One run = a warm-up, then a
// measured phase of fixed duration with a fixed number of connections cycling through a
// request list. Latency is taken per response (microsecond resolution; autocannon's own
// histogram rounds to whole milliseconds).
//
// As a process: node dist/bench/lib/loadgen.js <config.json>; prints {"phase":"measure"}
// when the warm-up ends, then one JSON line with the result.

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { percentile } from './stats';
import { pinned } from './pin';

export interface LoadRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Path on the target, e.g. /fhir/Patient/123. */
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface LoadConfig {
  /** http://host:port (with socketPath: any origin, e.g. http://localhost). */
  origin: string;
  socketPath?: string;
  requests: LoadRequest[];
  connections: number;
  seconds: number;
  warmupSeconds: number;
  timeoutSeconds: number;
}

export interface LoadResult {
  /** Answered requests in the measured phase (any status). */
  requests: number;
  seconds: number;
  /** Answered requests per second. */
  rps: number;
  /** Milliseconds, over every answered request. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  statusCodes: Record<string, number>;
  /** CPU the load generator itself used over the measured phase, as a fraction of one CPU:
   * near 1, it (not the target) may be what limits the throughput. */
  loadgenCpu: number;
}

/** The part of autocannon's API used here (it ships no types). */
interface Autocannon {
  (
    opts: object,
    done: (err: Error | null, result: { errors: number; timeouts: number }) => void,
  ): {
    on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTime: number) => void): void;
  };
}

function run(c: LoadConfig, latencies: number[] | null, statusCodes: Record<string, number>): Promise<{ seconds: number; errors: number }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- autocannon is loaded only when a load run starts
  const autocannon = require('autocannon') as Autocannon;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const instance = autocannon(
      {
        url: c.origin,
        ...(c.socketPath ? { socketPath: c.socketPath } : {}),
        connections: c.connections,
        duration: latencies ? c.seconds : c.warmupSeconds,
        timeout: c.timeoutSeconds,
        requests: c.requests.map((r) => ({ method: r.method, path: r.path, body: r.body, headers: { accept: 'application/fhir+json', ...r.headers } })),
      },
      (err, result) => {
        if (err) return reject(err);
        resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, errors: result.errors + result.timeouts });
      },
    );
    if (latencies) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        latencies.push(responseTime);
        statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      });
    }
  });
}

async function main(configFile: string): Promise<void> {
  const c = JSON.parse(readFileSync(configFile, 'utf8')) as LoadConfig;
  if (c.warmupSeconds > 0) await run(c, null, {});
  process.stdout.write(JSON.stringify({ phase: 'measure' }) + '\n');
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const { seconds, errors } = await run(c, latencies, statusCodes);
  const cpu = process.cpuUsage(cpu0);
  const sorted = Float64Array.from(latencies).sort();
  const ms = (x: number): number => Math.round(x * 1000) / 1000;
  const non2xx = Object.entries(statusCodes).reduce((n, [code, k]) => (code.startsWith('2') ? n : n + k), 0);
  const result: LoadResult = {
    requests: sorted.length,
    seconds,
    rps: sorted.length / seconds,
    p50: ms(percentile(sorted, 50)),
    p90: ms(percentile(sorted, 90)),
    p99: ms(percentile(sorted, 99)),
    max: ms(sorted[sorted.length - 1] ?? 0),
    non2xx,
    errors,
    statusCodes,
    loadgenCpu: Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100) / 100,
  };
  process.stdout.write(JSON.stringify({ result }) + '\n');
}

export interface LoadHooks {
  /** Called as the measured phase starts (after the warm-up). */
  start(): void;
  /** Called as soon as the result arrives. */
  end(): void;
}

/** Runs the load generator process on `config` (its file written in `dir`). */
export async function runLoad(dir: string, config: LoadConfig, cpus: string | null, hooks: LoadHooks): Promise<LoadResult> {
  const file = path.join(dir, `load-${process.pid}.json`);
  writeFileSync(file, JSON.stringify(config));
  const [cmd, args] = pinned(process.execPath, [__filename, file], cpus);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  let buf = '';
  let started = false;
  let result: LoadResult | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as { phase?: string; result?: LoadResult };
      buf = buf.slice(nl + 1);
      if (line.phase === 'measure') {
        started = true;
        hooks.start();
      }
      if (line.result) {
        hooks.end();
        result = line.result;
      }
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  if (code !== 0 || !result || !started) throw new Error(`load generator failed (exit ${code}): ${err}`);
  return result;
}

if (require.main === module) {
  main(process.argv[2]).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
