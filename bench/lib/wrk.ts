// wrk (Debian package, C, its own process) as a load generator for one URL: fixed connections
// and duration; a Lua `done` hook reports requests, p50, p99 and errors as one JSON line.
// bench:proxy uses it (one GET URL, with headers where a variant sends a token); `npm run bench` needs Unix sockets and request bodies,
// which wrk does not do, and uses autocannon (loadgen.ts).

import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pinned } from './pin';

export interface WrkRun {
  rps: number;
  p50us: number;
  p99us: number;
  requests: number;
  /** Socket errors, timeouts and non-2xx answers: any makes the run invalid. */
  errors: number;
}

const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50":%d,"p99":%d,"errors":%d,"detail":"connect %d, read %d, write %d, timeout %d, non-2xx %d"}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status, e.connect, e.read, e.write, e.timeout, e.status))
end
`;

export function wrkInstalled(): boolean {
  return !spawnSync('wrk', ['--version']).error;
}

/** Writes the reporting script into `dir`; returns a runner using it, its wrk pinned to `cpus` (a taskset list) when given. */
export function wrkRunner(dir: string, cpus: string | null = null): (url: string, connections: number, seconds: number, headers?: Readonly<Record<string, string>>) => Promise<WrkRun> {
  const script = path.join(dir, 'report.lua');
  writeFileSync(script, WRK_SCRIPT);
  // Asynchronous, so this process keeps draining its children's pipes meanwhile.
  return async (url, connections, seconds, headers = {}) => {
    const headerArgs = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
    const [command, args] = pinned('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', ...headerArgs, '-s', script, url], cpus);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // 'close', not 'exit': 'exit' can come before the last of stdout has been read, and a
    // summary line lost that way failed a whole run ("wrk printed no summary").
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    if (code !== 0) throw new Error(`wrk failed (${code}): ${err}${out}`);
    const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
    if (!line) throw new Error(`wrk printed no summary:\n${out}`);
    const s = JSON.parse(line) as { requests: number; durationUs: number; p50: number; p99: number; errors: number; detail: string };
    if (s.errors > 0) throw new Error(`${url}: ${s.errors} of ${s.requests} requests failed (${s.detail})`);
    return { rps: s.requests / (s.durationUs / 1e6), p50us: s.p50, p99us: s.p99, requests: s.requests, errors: s.errors };
  };
}
