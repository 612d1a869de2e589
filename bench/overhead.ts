// What kernel confinement costs FHIR traffic. One run drives the same workload through the
// real proxy (fhirguard proxy, fed by fhirguard agent) with the shipped policy's workers
//   (a) unconfined:        plain processes (the agent with no runc: degraded mode)
//   (b) seccomp:           runc containers (mounts, namespaces, no capabilities) + seccomp
//   (c) seccomp + eBPF:    (b) plus the eBPF policy in serve phase on every worker cgroup
// and prints throughput, p50/p99 latency and the workers' CPU time per request for each, and
// (b)/(a), (c)/(a). Target: (c) >= 97% of (a)'s throughput. The three systems run side by
// side and the runs alternate in rotating order (median per variant), so machine noise hits
// all alike. Needs root, runc and `make -C bpf`.
// Run: npx tsc -p tsconfig.json && npm run bench:overhead [-- <seconds per run> <rounds>]

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { AgentClient } from '../src/agent/client';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'fhirguard');
const SYNTHEA = path.join(ROOT, '..', 'shared', 'corpus', 'synthea');
const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 6);
const TARGET = 0.97;

type Variant = 'unconfined' | 'seccomp' | 'seccomp+ebpf';
const VARIANTS: Variant[] = ['unconfined', 'seccomp', 'seccomp+ebpf'];
const AGENT_ARGS: Record<Variant, string[]> = {
  unconfined: ['--runc', '/nonexistent/runc'],
  seccomp: ['--without-ebpf'],
  'seccomp+ebpf': [],
};

interface Run {
  rps: number;
  /** CPU time (user + system) the workers spent per request: insensitive to how much of a
   * busy machine the scheduler gives the workers' cgroups. */
  cpuMsPerReq: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

function exited(p: ChildProcess): Promise<void> {
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())));
}

async function stop(p: ChildProcess): Promise<void> {
  p.kill('SIGTERM');
  await exited(p);
}

async function waitAllServing(client: AgentClient): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const ws = await client.workers();
      if (ws.length && ws.every((w) => w.state === 'serving')) return;
    } catch {
      // API not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('workers not serving after 120 s');
}

/** Starts agent + proxy on a fresh state directory sharing `dataDir`'s database. */
/** CPU seconds (user + system) a process has used: /proc/<pid>/stat, in USER_HZ = 100 ticks. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startSystem(variant: Variant, dir: string, db: string): Promise<{ url: string; workerPids(): Promise<number[]>; stop(): Promise<void> }> {
  const stateDir = path.join(dir, `state-${variant.replace('+', '-')}`);
  const socket = path.join(stateDir, 'agent.sock');
  const agent = spawn(process.execPath, [BIN, 'agent', '--state-dir', stateDir, '--db', db, '--socket', socket, '--log-level', 'warn', ...AGENT_ARGS[variant]], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const client = new AgentClient(socket, 2000);
  try {
    await waitAllServing(client);
  } catch (err) {
    await stop(agent);
    throw err;
  }
  const proxy = spawn(process.execPath, [BIN, 'proxy', '--agent', socket, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: proxy.stdout! }).on('line', (line) => {
        const m = /"fhir":"([^"]+)"/.exec(line);
        if (m && line.includes('proxy listening')) resolve(m[1]);
      });
      proxy.once('exit', () => reject(new Error('proxy exited during start')));
    });
    proxy.stdout!.resume();
    // The proxy learns its members from the agent: wait until every tier answers through it.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await fetch(`${url}/Patient?_count=1`).catch(() => null);
      if (res?.status === 200) break;
      if (Date.now() > deadline) throw new Error(`proxy not routing after 60 s (last status ${res?.status})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop(proxy);
    await stop(agent);
    throw err;
  }
  return {
    url,
    workerPids: async () => (await client.workers()).map((w) => w.pid).filter((p): p is number => !!p),
    stop: async () => {
      await stop(proxy);
      await stop(agent);
    },
  };
}

async function seed(url: string, files: string[]): Promise<string[]> {
  for (const f of files) {
    const res = await fetch(url + '/', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: readFileSync(path.join(SYNTHEA, f)) });
    if (res.status !== 200) throw new Error(`seeding ${f}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  }
  const bundle = (await (await fetch(`${url}/Patient?_count=50`)).json()) as { entry?: Array<{ resource: { id: string } }> };
  return (bundle.entry ?? []).map((e) => e.resource.id);
}

interface Req {
  method: 'GET' | 'PUT';
  path: string;
  body?: string;
}

/** The workload: reads by id, typical searches, and an update now and then (read-mostly, as FHIR traffic is). */
function requests(patients: string[]): Req[] {
  const reqs: Req[] = [];
  for (const id of patients.slice(0, 10)) {
    reqs.push({ method: 'GET', path: `/Patient/${id}` });
    reqs.push({ method: 'GET', path: `/Observation?subject=Patient/${id}&_count=10` });
    reqs.push({ method: 'GET', path: `/Encounter?patient=${id}&_count=5` });
  }
  // An update of one resource: a real write (new version, index rows, fsyncs) that leaves
  // what the searches scan the same size from run to run.
  reqs.push({
    method: 'PUT',
    path: '/Observation/overhead-bench',
    body: JSON.stringify({ resourceType: 'Observation', id: 'overhead-bench', status: 'final', code: { text: 'bench' }, subject: { reference: `Patient/${patients[0]}` } }),
  });
  return reqs;
}

const CONNECTIONS = 8;

/** CONNECTIONS closed loops over the request list for `seconds`: throughput and latency percentiles. */
async function drive(url: string, reqs: Req[], seconds: number, pids: number[] = []): Promise<Run> {
  const cpu0 = pids.reduce((n, p) => n + cpuSeconds(p), 0);
  const u = new URL(url);
  const base = u.pathname.replace(/\/$/, '');
  const pool = new Pool(u.origin, { connections: CONNECTIONS });
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let next = 0;
  const end = Date.now() + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (Date.now() < end) {
      const q = reqs[next++ % reqs.length];
      const t0 = process.hrtime.bigint();
      try {
        const res = await pool.request({
          method: q.method,
          path: base + q.path,
          headers: { accept: 'application/fhir+json', ...(q.body ? { 'content-type': 'application/fhir+json' } : {}) },
          body: q.body,
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode >= 300) non2xx++;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch {
        errors++;
      }
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  const elapsed = (Date.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const cpu = pids.reduce((n, p) => n + cpuSeconds(p), 0) - cpu0;
  const pct = (p: number): number => Number((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(2));
  return { rps: latencies.length / elapsed, cpuMsPerReq: (cpu * 1000) / Math.max(1, latencies.length), p50: pct(0.5), p99: pct(0.99), errors, non2xx };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:overhead needs root (runc, eBPF)');
  const dir = mkdtempSync('/tmp/fg-overhead-');
  chmodSync(dir, 0o755); // plain-process workers (variant a) must reach the database
  const db = path.join(dir, 'data', 'fhir.db');
  const results: Record<Variant, Run[]> = { unconfined: [], seccomp: [], 'seccomp+ebpf': [] };
  console.log(`overhead: ${SECONDS} s per run, ${ROUNDS} rounds, ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}; workload through the proxy, ${CONNECTIONS} connections`);
  // All three systems run side by side (one database); the runs alternate between them in a
  // rotating order, so a busy spell of the machine falls on every variant alike.
  const systems = new Map<Variant, Awaited<ReturnType<typeof startSystem>>>();
  try {
    for (const v of VARIANTS) systems.set(v, await startSystem(v, dir, db));
    const files = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json')).sort().slice(0, 3);
    const reqs = requests(await seed(systems.get('unconfined')!.url, files));
    for (const v of VARIANTS) await drive(systems.get(v)!.url, reqs, 3); // warm-up: JIT, SQLite page cache
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
      for (const v of order) {
        const sys = systems.get(v)!;
        const run = await drive(sys.url, reqs, SECONDS, await sys.workerPids());
        results[v].push(run);
        console.log(
          `  round ${round + 1} ${v.padEnd(13)} ${run.rps.toFixed(0)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  worker CPU ${run.cpuMsPerReq.toFixed(3)} ms/req  errors ${run.errors}  non-2xx ${run.non2xx}`,
        );
      }
    }
  } finally {
    for (const sys of systems.values()) await sys.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const summary = Object.fromEntries(
    VARIANTS.map((v) => {
      const m = (k: keyof Run): number => median(results[v].map((r) => r[k]));
      return [v, { rps: m('rps'), p50: m('p50'), p99: m('p99'), cpu: m('cpuMsPerReq') }];
    }),
  ) as Record<Variant, { rps: number; p50: number; p99: number; cpu: number }>;
  console.log('\nmedian of rounds:');
  for (const v of VARIANTS) {
    const x = summary[v];
    console.log(`  (${'abc'[VARIANTS.indexOf(v)]}) ${v.padEnd(13)} ${x.rps.toFixed(0)} req/s  p50 ${x.p50} ms  p99 ${x.p99} ms  worker CPU ${x.cpu.toFixed(3)} ms/req`);
  }
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const b = summary.seccomp.rps / summary.unconfined.rps;
  const c = summary['seccomp+ebpf'].rps / summary.unconfined.rps;
  console.log(`  (b)/(a) throughput ${pct(b)}, worker CPU per request ${pct(summary.seccomp.cpu / summary.unconfined.cpu)}`);
  console.log(`  (c)/(a) throughput ${pct(c)}, worker CPU per request ${pct(summary['seccomp+ebpf'].cpu / summary.unconfined.cpu)}`);
  console.log(`  target (c) >= ${TARGET * 100}% of (a)'s throughput: ${c >= TARGET ? 'met' : 'NOT met'}`);
  if (loadavg()[0] > cpus().length) {
    console.log(`  note: load average ${loadavg()[0].toFixed(2)} on ${cpus().length} CPUs: other work competed for the CPUs during the runs;`);
    console.log('  worker CPU per request is the figure that contention disturbs least');
  }
  const failed = VARIANTS.flatMap((v) => results[v]).some((r) => r.errors > 0);
  if (failed) {
    console.error('some requests failed: figures are not comparable');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
