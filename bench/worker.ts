// Speed of the reference worker against the targets, on real processes over Unix
// sockets: resources/s loading the 21 Synthea bundles as transactions (target >= 1,000/s),
// read by id p50/p99 (target p50 <= 2 ms) and a typical search p50/p99, both on a read-only
// worker sharing the database, with an HTTP floor (a 404 that touches no table) as baseline.
// Run: npx tsc -p tsconfig.json && npm run bench:worker

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'undici';
import { cpuSeconds } from './lib/cpu-time';

const ROOT = resolve(__dirname, '..', '..');
const CORPUS = join(ROOT, '..', 'shared', 'corpus', 'synthea');
const TARGET_LOAD_PER_S = 1000;
const TARGET_READ_P50_MS = 2;

interface Worker {
  child: ChildProcess;
  client: Client;
}

async function start(db: string, socket: string, readOnly: boolean): Promise<Worker> {
  const args = [join(ROOT, 'bin', 'fhirguard'), 'worker', '--tier', readOnly ? 'read' : 'write', '--db', db, '--listen', `unix:${socket}`, '--log-level', 'warn'];
  if (readOnly) args.push('--read-only');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const client = new Client('http://localhost', { socketPath: socket, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('worker exited during start');
    if (existsSync(socket)) {
      try {
        const res = await client.request({ method: 'GET', path: '/metadata' });
        await res.body.text();
        if (res.statusCode === 200) return { child, client };
      } catch {
        // not accepting yet
      }
    }
    if (Date.now() > deadline) throw new Error('worker not ready in 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(w: Worker): Promise<void> {
  await w.client.close();
  const exited = new Promise((r) => w.child.once('exit', r));
  w.child.kill('SIGTERM');
  await exited;
}

async function call(c: Client, method: string, path: string, body?: Buffer): Promise<{ status: number; text: string }> {
  const res = await c.request({
    method: method as 'GET',
    path,
    headers: body ? { 'content-type': 'application/fhir+json' } : { accept: 'application/fhir+json' },
    body,
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Latency of each call in ms, after `warmup` untimed calls. */
async function latencies(c: Client, paths: string[], warmup: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await call(c, 'GET', paths[i % paths.length]);
  const out: number[] = [];
  for (const p of paths) {
    const t0 = process.hrtime.bigint();
    const res = await call(c, 'GET', p);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (res.status !== 200 && res.status !== 404) throw new Error(`${p}: ${res.status} ${res.text.slice(0, 200)}`);
  }
  return out;
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-worker-'));
  const db = join(dir, 'fhir.db');
  const writer = await start(db, join(dir, 'w.sock'), false);
  try {
    // Load: every bundle as one transaction, one after the other.
    const files = readdirSync(CORPUS)
      .filter((f) => f.endsWith('.json') && f !== 'index.json')
      .sort();
    const bodies = files.map((f) => readFileSync(join(CORPUS, f)));
    const refs: string[] = [];
    const patients: string[] = [];
    let entries = 0;
    const t0 = process.hrtime.bigint();
    const cpu0 = cpuSeconds(writer.child.pid!);
    for (const body of bodies) {
      const res = await call(writer.client, 'POST', '/', body);
      if (res.status !== 200) throw new Error(`load: ${res.status} ${res.text.slice(0, 300)}`);
      for (const e of JSON.parse(res.text).entry as { response: { location: string } }[]) {
        const m = /\/([A-Za-z]+\/[^/]+)\/_history\//.exec(e.response.location)!;
        refs.push(m[1]);
        if (m[1].startsWith('Patient/')) patients.push(m[1].slice('Patient/'.length));
        entries++;
      }
    }
    const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
    const perS = entries / loadS;
    // Wall-clock rate depends on what else the machine runs; the worker's own CPU time does less.
    const loadCpu = cpuSeconds(writer.child.pid!) - cpu0;

    const reader = await start(db, join(dir, 'r.sock'), true);
    try {
      // Read by id: 3,000 reads over a shuffled sample of every loaded resource type.
      const readPaths = Array.from({ length: 3000 }, (_, i) => `/${refs[(i * 7919) % refs.length]}`);
      const reads = await latencies(reader.client, readPaths, 300);
      // Typical search: a patient's Observations of one LOINC code, newest first.
      const codes = ['8302-2', '29463-7', '39156-5', '8867-4', '72514-3'];
      const searchPaths = Array.from({ length: 1000 }, (_, i) => `/Observation?patient=${patients[i % patients.length]}&code=http://loinc.org|${codes[i % codes.length]}&_sort=-date&_count=20`);
      const searches = await latencies(reader.client, searchPaths, 100);
      // Baseline: the HTTP round trip with routing and no table access.
      const floor = await latencies(
        reader.client,
        Array.from({ length: 3000 }, () => '/Patient/bench-missing'),
        300,
      );

      const readP50 = pct(reads, 50);
      const lines = [
        `fhirguard worker benchmark, ${new Date().toISOString()}`,
        `machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}`,
        `load 21 Synthea bundles as transactions: ${entries} resources in ${loadS.toFixed(2)} s = ${perS.toFixed(0)} resources/s ` +
          `(target >= ${TARGET_LOAD_PER_S}/s: ${(perS / TARGET_LOAD_PER_S).toFixed(2)}x target, ${perS >= TARGET_LOAD_PER_S ? 'met' : 'NOT met'})`,
        `  the write worker used ${loadCpu.toFixed(2)} CPU-s for it: ${(entries / loadCpu).toFixed(0)} resources per CPU-second; ` +
          `load average at the end ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`,
        `read by id (read-only worker, ${reads.length} reads): p50 ${fmt(readP50)}, p99 ${fmt(pct(reads, 99))} ` +
          `(target p50 <= ${TARGET_READ_P50_MS} ms: ${(TARGET_READ_P50_MS / readP50).toFixed(2)}x headroom, ${readP50 <= TARGET_READ_P50_MS ? 'met' : 'NOT met'})`,
        `typical search (Observation?patient&code&_sort=-date&_count=20, ${searches.length} searches): p50 ${fmt(pct(searches, 50))}, p99 ${fmt(pct(searches, 99))}`,
        `baseline, HTTP round trip without storage (404): p50 ${fmt(pct(floor, 50))}, p99 ${fmt(pct(floor, 99))}; ` + `read by id p50 / baseline p50 = ${(readP50 / pct(floor, 50)).toFixed(2)}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      await stop(reader);
    }
  } finally {
    await stop(writer);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench:worker failed: ${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
