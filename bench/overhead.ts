// What kernel confinement costs FHIR traffic. One run drives the same mixed workload through
// the real proxy (fhirguard proxy, fed by fhirguard agent) with the shipped policy's workers
//   (a) unconfined:        plain processes (the agent with no runc: degraded mode)
//   (b) seccomp:           runc containers (mounts, namespaces, no capabilities) + seccomp
//   (c) seccomp + eBPF:    (b) plus the eBPF policy in serve phase on every worker cgroup
// and prints throughput, p50/p99 latency and the workers' CPU time per request for each, and
// (b)/(a), (c)/(a). Target: (c) >= 97% of (a)'s throughput. The three systems run side by
// side and the runs alternate in rotating order (median per variant), so machine noise hits
// all alike. Load: autocannon in its own process (bench/lib/loadgen.ts). Needs root, runc and
// `make -C bpf`. `npm run bench` measures the same variants per workload, pinned, with more.
// Run: npx tsc -p tsconfig.json && npm run bench:overhead [-- <seconds per run> <rounds>]

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { totalCpuSeconds } from './lib/cpu-time';
import { runLoad, type LoadRequest } from './lib/loadgen';
import { stopAll } from './lib/procs';
import { seed, syntheaFiles, withLoader } from './lib/seed';
import { median } from './lib/stats';
import { ENFORCEMENTS, startSystem, type Enforcement, type System } from './lib/system';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 6);
const TARGET = 0.97;
const CONNECTIONS = 8;

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

/** The workload: reads by id, typical searches, and an update now and then (read-mostly, as FHIR traffic is). */
function requests(base: string, patients: string[]): LoadRequest[] {
  const reqs: LoadRequest[] = [];
  for (const id of patients.slice(0, 10)) {
    reqs.push({ method: 'GET', path: `${base}/Patient/${id}` });
    reqs.push({ method: 'GET', path: `${base}/Observation?subject=Patient/${id}&_count=10` });
    reqs.push({ method: 'GET', path: `${base}/Encounter?patient=${id}&_count=5` });
  }
  // An update of one resource: a real write (new version, index rows, fsyncs) that leaves
  // what the searches scan the same size from run to run.
  reqs.push({
    method: 'PUT',
    path: `${base}/Observation/overhead-bench`,
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Observation', id: 'overhead-bench', status: 'final', code: { text: 'bench' }, subject: { reference: `Patient/${patients[0]}` } }),
  });
  return reqs;
}

/** CONNECTIONS connections cycling over the request list for `seconds` (after `warmup`). */
async function drive(dir: string, sys: System, patients: string[], seconds: number, warmup: number): Promise<Run> {
  const u = new URL(sys.url);
  const pids = await sys.workerPids();
  let cpu0 = 0;
  let cpu1 = 0;
  const r = await runLoad(dir, { origin: u.origin, requests: requests(u.pathname, patients), connections: CONNECTIONS, seconds, warmupSeconds: warmup, timeoutSeconds: 30 }, null, {
    start: () => (cpu0 = totalCpuSeconds(pids)),
    end: () => (cpu1 = totalCpuSeconds(pids)),
  });
  return { rps: r.rps, cpuMsPerReq: ((cpu1 - cpu0) * 1000) / Math.max(1, r.requests), p50: r.p50, p99: r.p99, errors: r.errors, non2xx: r.non2xx };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:overhead needs root (runc, eBPF)');
  const dir = mkdtempSync('/tmp/fg-overhead-');
  chmodSync(dir, 0o755); // plain-process workers (variant a) must reach the database
  const db = path.join(dir, 'data', 'fhir.db');
  const results: Record<Enforcement, Run[]> = { unconfined: [], seccomp: [], 'seccomp+ebpf': [] };
  console.log(`overhead: ${SECONDS} s per run, ${ROUNDS} rounds, ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}; workload through the proxy, ${CONNECTIONS} connections`);
  // All three systems run side by side (one database); the runs alternate between them in a
  // rotating order, so a busy spell of the machine falls on every variant alike.
  const systems = new Map<Enforcement, System>();
  try {
    const { patients } = await withLoader(db, dir, (l) => seed(l, syntheaFiles(3)));
    for (const v of ENFORCEMENTS) systems.set(v, await startSystem({ enforcement: v, dir, db, proxyLogLevel: 'info' }));
    for (let round = 0; round < ROUNDS; round++) {
      const order = ENFORCEMENTS.map((_, i) => ENFORCEMENTS[(i + round) % ENFORCEMENTS.length]);
      for (const v of order) {
        // Warm-up (JIT, SQLite page cache) before each system's first run.
        const run = await drive(dir, systems.get(v)!, patients, SECONDS, round === 0 ? 3 : 0);
        results[v].push(run);
        console.log(
          `  round ${round + 1} ${v.padEnd(13)} ${run.rps.toFixed(0)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms  worker CPU ${run.cpuMsPerReq.toFixed(3)} ms/req  errors ${run.errors}  non-2xx ${run.non2xx}`,
        );
      }
    }
  } finally {
    for (const sys of systems.values()) await sys.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const summary = Object.fromEntries(
    ENFORCEMENTS.map((v) => {
      const m = (k: keyof Run): number => median(results[v].map((r) => r[k]));
      return [v, { rps: m('rps'), p50: m('p50'), p99: m('p99'), cpu: m('cpuMsPerReq') }];
    }),
  ) as Record<Enforcement, { rps: number; p50: number; p99: number; cpu: number }>;
  console.log('\nmedian of rounds:');
  for (const v of ENFORCEMENTS) {
    const x = summary[v];
    console.log(`  (${'abc'[ENFORCEMENTS.indexOf(v)]}) ${v.padEnd(13)} ${x.rps.toFixed(0)} req/s  p50 ${x.p50.toFixed(2)} ms  p99 ${x.p99.toFixed(2)} ms  worker CPU ${x.cpu.toFixed(3)} ms/req`);
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
  const failed = ENFORCEMENTS.flatMap((v) => results[v]).some((r) => r.errors > 0);
  if (failed) {
    console.error('some requests failed: figures are not comparable');
    process.exitCode = 1;
  }
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exitCode = 1;
});
