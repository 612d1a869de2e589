// The benchmark suite (`npm run bench`, `make bench`): one command, one run, every variant
// and workload of the project's performance question, with the same database for all:
//
//   variants   direct, bare @fastify/http-proxy, fhirguard (workers unconfined),
//              fhirguard + seccomp, fhirguard + seccomp + eBPF        (bench/lib/variants.ts)
//   workloads  read by id, search, validated create, Synthea transaction (bench/lib/workloads.ts)
//
// Load comes from autocannon in a process of its own, pinned with taskset to CPU 0 while the
// proxies, workers and agents are pinned to the other CPU(s) (bench/lib/pin.ts). Each
// (variant, workload) cell runs a warm-up then a fixed-duration measurement, repeated N times
// with the variants in rotating order within each workload, so drift of a shared machine
// falls on all alike; workloads run one after the other, reads first (writes grow the
// database). Medians are reported with min-max; the spread across repeats, the other work
// seen on the measured CPU and the load average say how noisy the run was. Ratios: against the bare proxy and against
// unconfined fhirguard. Results: a table on stdout, JSON in bench/results/bench-<date>.json.
//
// The enforced variants need root, runc and the eBPF loader (`make -C bpf`); where one is
// missing, or the agent reports less enforcement than the variant stands for, the variant is
// skipped and the output says so.
//
// Run: npm run bench [-- --quick] [-- --variants direct,bare,fhirguard --workloads read,search
//      --seconds 10 --warmup 3 --repeats 3 --connections 8 --transaction-connections 2
//      --out <file.json> --no-pin]

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { parseDocument } from 'yaml';
import type { WorkerInfo } from '../src/agent/client';
import { BARE_SCRIPT } from './lib/bare';
import { busySeconds, totalCpuSeconds } from './lib/cpu-time';
import { runLoad, type LoadConfig } from './lib/loadgen';
import { describe, load, machine } from './lib/machine';
import { cpuIndices, cpuPlan, pinPid } from './lib/pin';
import { firstLine, spawnLogged, stopAll } from './lib/procs';
import { addRatios, noise, printNoise, printWorkload, summarise, type Cell, type Run } from './lib/report';
import { seed, syntheaFiles } from './lib/seed';
import { enforcementMismatch, ROOT, startSystem, type Enforcement, type System } from './lib/system';
import { DESCRIBE, parseVariants, SYSTEM_OF, VARIANTS, type VariantId } from './lib/variants';
import { buildWorkloads, WORKLOADS, type Workload, type WorkloadName } from './lib/workloads';

const out = (s: string): void => void process.stdout.write(s);
const say = (s: string): void => void process.stderr.write(s + '\n');

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      variants: { type: 'string', default: VARIANTS.join(',') },
      workloads: { type: 'string', default: WORKLOADS.join(',') },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      repeats: { type: 'string' },
      connections: { type: 'string', default: '8' },
      'transaction-connections': { type: 'string', default: '2' },
      patients: { type: 'string' },
      out: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'proxy-log-level': { type: 'string', default: 'warn' },
    },
  });
  const quick = values.quick!;
  const num = (v: string | undefined, dflt: number, name: string): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number (got '${v}')`);
    return n;
  };
  const workloads = values.workloads!.split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of workloads) if (!(WORKLOADS as string[]).includes(w)) throw new Error(`unknown workload '${w}' (one of ${WORKLOADS.join(', ')})`);
  return {
    quick,
    variants: parseVariants(values.variants!),
    workloads: WORKLOADS.filter((w) => workloads.includes(w)),
    seconds: num(values.seconds, quick ? 2 : 10, 'seconds'),
    warmup: num(values.warmup, quick ? 1 : 3, 'warmup'),
    repeats: Math.round(num(values.repeats, quick ? 1 : 3, 'repeats')),
    connections: Math.round(num(values.connections, 8, 'connections')),
    transactionConnections: Math.round(num(values['transaction-connections'], 2, 'transaction-connections')),
    /** Patient bundles loaded (all 20 by default; the smallest few with --quick). */
    patients: values.patients !== undefined ? Math.round(num(values.patients, 20, 'patients')) : quick ? 3 : undefined,
    out: values.out,
    pin: !values['no-pin'],
    proxyLogLevel: values['proxy-log-level']!,
  };
}

type Options = ReturnType<typeof options>;

/** Enforced variants this host cannot run, with why (said loudly, and recorded in the results). */
function unavailable(variants: VariantId[]): Map<VariantId, string> {
  const skip = new Map<VariantId, string>();
  const enforced = variants.filter((v) => SYSTEM_OF[v] !== 'unconfined');
  if (!enforced.length) return skip;
  let why: string | null = null;
  if (process.getuid?.() !== 0) why = 'not root: runc containers and eBPF need root';
  else if (spawnSync('runc', ['--version']).error && !existsSync('/usr/sbin/runc')) why = 'runc not found';
  for (const v of enforced) if (why) skip.set(v, why);
  if (!why && variants.includes('fhirguard+seccomp+ebpf') && !existsSync(path.join(ROOT, 'bpf', '.output', 'fhirguard-bpf'))) {
    skip.set('fhirguard+seccomp+ebpf', 'the eBPF loader bpf/.output/fhirguard-bpf is not built (make -C bpf)');
  }
  return skip;
}

/** The shipped policy with one worker per tier, so direct, bare and fhirguard reach the very same worker. */
function benchPolicy(dir: string): string {
  const doc = parseDocument(readFileSync(path.join(ROOT, 'profiles', 'policy.yaml'), 'utf8'));
  const tiers = doc.get('tiers') as { items: { set(k: string, v: unknown): void }[] };
  for (const t of tiers.items) t.set('workers', 1);
  const file = path.join(dir, 'policy.yaml');
  writeFileSync(file, doc.toString());
  return file;
}

function workerOf(ws: WorkerInfo[], tier: string): WorkerInfo {
  const w = ws.find((x) => x.tier === tier && x.state === 'serving');
  if (!w) throw new Error(`no serving worker of tier ${tier}`);
  return w;
}

interface Target {
  origin: string;
  socketPath?: string;
  /** Prefix of the FHIR base on the target ('' for a worker, '/fhir' for the proxies). */
  base: string;
  /** The processes whose CPU time counts for this target. */
  pids(): Promise<number[]>;
}

async function main(): Promise<void> {
  const o = options();
  const started = new Date();
  const t0 = Date.now();
  const loadStart = load();
  const skipped = unavailable(o.variants);
  const { plan, why: noPin } = cpuPlan(o.pin);
  say(`fhirguard bench ${o.quick ? '(quick) ' : ''}${started.toISOString()}: ${o.variants.length} variants x ${o.workloads.length} workloads, ${o.seconds} s per run after ${o.warmup} s warm-up, ${o.repeats} repeat(s)`);
  say(`pinning: ${plan ? plan.note : noPin}`);
  for (const [v, why] of skipped) say(`SKIPPED ${v}: ${why}`);

  const dir = mkdtempSync('/tmp/fg-bench-');
  chmodSync(dir, 0o755); // plain-process workers (the worker user) must reach the database
  const db = path.join(dir, 'data', 'fhir.db');
  const policy = benchPolicy(dir);
  const systems = new Map<Enforcement, System>();
  const bare = new Map<string, { port: number; pid: number }>(); // by tier
  const cells: Cell[] = [];
  let seeded: Awaited<ReturnType<typeof seed>> | null = null;
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    say('interrupted: stopping what the benchmark started');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const measured = plan?.measured ?? null;
    const start = (e: Enforcement): Promise<System> => startSystem({ enforcement: e, dir, db, policy, cpus: measured, proxyLogLevel: o.proxyLogLevel });
    // The unconfined system always: its workers are direct's and bare's, and it loads the data.
    systems.set('unconfined', await start('unconfined'));
    const plainSys = systems.get('unconfined')!;
    seeded = await seed(plainSys.url, syntheaFiles(o.patients));
    say(`seeded: ${seeded.resources} resources (${seeded.patients.length} patients) in ${seeded.seconds.toFixed(1)} s`);
    const subject = await fetch(`${plainSys.url}/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Bench', given: ['Create'] }] }),
    });
    if (subject.status !== 201) throw new Error(`creating the create workload's subject: HTTP ${subject.status}`);
    const workloads = buildWorkloads(seeded.patients, ((await subject.json()) as { id: string }).id, o);

    for (const e of ['seccomp', 'seccomp+ebpf'] as Enforcement[]) {
      const vs = o.variants.filter((v) => SYSTEM_OF[v] === e && !skipped.has(v));
      if (!vs.length) continue;
      let sys: System;
      try {
        sys = await start(e);
      } catch (err) {
        for (const v of vs) skipped.set(v, `its system did not start: ${(err as Error).message}`);
        say(`SKIPPED ${vs.join(', ')}: its system did not start: ${(err as Error).message}`);
        continue;
      }
      const mismatch = enforcementMismatch(e, await sys.enforcementReport());
      if (mismatch) {
        for (const v of vs) skipped.set(v, `the agent does not enforce ${e}: ${mismatch}`);
        say(`SKIPPED ${vs.join(', ')}: the agent does not enforce ${e}: ${mismatch}`);
        await sys.stop();
        continue;
      }
      systems.set(e, sys);
    }
    const unconfinedMismatch = enforcementMismatch('unconfined', await plainSys.enforcementReport());
    if (unconfinedMismatch) throw new Error(`the unconfined system is not what it should be: ${unconfinedMismatch}`);

    const plainWorkers = await plainSys.workers();
    const tiers = [...new Set(o.workloads.map((w) => workloads[w].tier))];
    if (o.variants.includes('bare')) {
      for (const tier of tiers) {
        const child = spawnLogged(`bare proxy (${tier})`, process.execPath, [BARE_SCRIPT, workerOf(plainWorkers, tier).address], { cpus: measured });
        const port = await firstLine(child, 'bare proxy', (l) => (l.startsWith('{"port"') ? (JSON.parse(l) as { port: number }).port : undefined));
        bare.set(tier, { port, pid: child.pid! });
      }
    }
    const variants = o.variants.filter((v) => !skipped.has(v));

    const targetOf = (v: VariantId, w: Workload): Target => {
      const sys = systems.get(SYSTEM_OF[v])!;
      const workersPids = (): Promise<number[]> => sys.workerPids();
      if (v === 'direct') return { origin: 'http://localhost', socketPath: workerOf(plainWorkers, w.tier).socketPath, base: '', pids: workersPids };
      if (v === 'bare') return { origin: `http://127.0.0.1:${bare.get(w.tier)!.port}`, base: '/fhir', pids: async () => [bare.get(w.tier)!.pid, ...(await workersPids())] };
      const u = new URL(sys.url);
      return { origin: u.origin, base: u.pathname.replace(/\/$/, ''), pids: async () => [sys.proxy.pid!, ...(await workersPids())] };
    };

    // Every target answers every workload's first request with a 2xx before anything is measured.
    for (const v of variants) {
      for (const name of o.workloads) {
        const w = workloads[name];
        await probe(v, w, targetOf(v, w));
      }
    }

    const measuredCpus = plan ? cpuIndices(plan.measured) : null;
    const runs = new Map<string, Run[]>();
    const total = o.repeats * o.workloads.length * variants.length;
    let done = 0;
    // Workload by workload, reads first: the writes (create, transaction) grow the database,
    // and a search's cost grows with it, so reads see the seeded database in every repeat.
    for (const name of o.workloads) {
      const w = workloads[name];
      for (let repeat = 0; repeat < o.repeats && !interrupted; repeat++) {
        // Rotating order: each variant runs first, middle and last across the repeats.
        const order = variants.map((_, i) => variants[(i + repeat) % variants.length]);
        for (const v of order) {
          if (interrupted) break;
          const t = targetOf(v, w);
          if (plan && SYSTEM_OF[v] !== 'unconfined') for (const pid of await systems.get(SYSTEM_OF[v])!.workerPids()) pinPid(pid, plan.measured);
          const pids = await t.pids();
          const cpu = { pids0: 0, pids1: 0, busy0: 0, busy1: 0 };
          const loadavg1 = Math.round(loadavg()[0] * 100) / 100;
          const r = await runLoad(dir, loadConfig(t, w, o, w.connections), plan?.loadgen ?? null, {
            start: () => {
              cpu.pids0 = totalCpuSeconds(pids);
              cpu.busy0 = busySeconds(measuredCpus);
            },
            end: () => {
              cpu.pids1 = totalCpuSeconds(pids);
              cpu.busy1 = busySeconds(measuredCpus);
            },
          });
          const ours = cpu.pids1 - cpu.pids0 + (plan ? 0 : r.loadgenCpu * r.seconds);
          const otherCpu = Math.max(0, Math.round(((cpu.busy1 - cpu.busy0 - ours) / (r.seconds * (measuredCpus?.length ?? cpus().length))) * 100) / 100);
          const run: Run = { ...r, repeat: repeat + 1, cpuMsPerReq: r.requests ? ((cpu.pids1 - cpu.pids0) * 1000) / r.requests : 0, loadavg1, otherCpu };
          const key = `${v}\n${name}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          done++;
          say(
            `  [${done}/${total}] repeat ${repeat + 1} ${name.padEnd(11)} ${v.padEnd(23)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)}  p90 ${r.p90.toFixed(2)}  p99 ${r.p99.toFixed(2)} ms` +
              `  CPU ${run.cpuMsPerReq.toFixed(2)} ms/req  autocannon CPU ${(r.loadgenCpu * 100).toFixed(0)}%  other ${(otherCpu * 100).toFixed(0)}%  load ${loadavg1}${r.non2xx || r.errors ? `  FAILED: non-2xx ${r.non2xx}, errors ${r.errors} ${JSON.stringify(r.statusCodes)}` : ''}`,
          );
        }
      }
    }
    if (interrupted) throw new Error('interrupted');
    for (const name of o.workloads) for (const v of variants) cells.push(summarise(v, name, runs.get(`${v}\n${name}`) ?? []));
    addRatios(cells);
    const failed = cells.flatMap((c) => c.runs).filter((r) => r.non2xx || r.errors).length;

    const m = machine(loadStart);
    const n = noise(cells);
    const durationSeconds = Math.round((Date.now() - t0) / 1000);
    out(`\nfhirguard benchmark, ${started.toISOString()}, ${durationSeconds} s\n`);
    out(`machine: ${describe(m)}\n`);
    out(`load: autocannon in its own process, ${o.seconds} s per run after ${o.warmup} s warm-up, ${o.repeats} repeat(s) per workload, variants in rotating order; medians over the repeats\n`);
    out(`pinning: ${plan ? plan.note : noPin}\n`);
    out(`database: ${seeded.resources} Synthea resources (${seeded.patients.length} patients), one worker per tier, shared by every variant\n`);
    for (const v of VARIANTS) out(`  ${v.padEnd(24)}${skipped.has(v) ? `SKIPPED: ${skipped.get(v)}` : o.variants.includes(v) ? DESCRIBE[v] : 'not selected'}\n`);
    for (const name of o.workloads) printWorkload(workloads[name], cells, out);
    out('\nx vs bare: against the bare @fastify/http-proxy; x vs unconf.: against fhirguard with unconfined workers. req/s above 1x is faster, p50 above 1x slower.\n');
    out('CPU ms/req: CPU time of the measured processes (proxy and workers) per request, which contention disturbs less than req/s.\n');
    if (variants.includes('fhirguard+seccomp+ebpf')) {
      out('While the seccomp+eBPF system runs, its sys_enter program is attached machine-wide: every variant pays its per-syscall lookup (bench/syscall-cost.ts).\n');
    }
    if (variants.some((v) => SYSTEM_OF[v] !== 'unconfined') && variants.some((v) => SYSTEM_OF[v] === 'unconfined')) {
      out('Under contention the agent weighs the /fhirguard cgroups as the containers they hold (src/enforce/cpu-weight.ts), while the plain\n');
      out('processes of direct, bare and fhirguard compete one by one: on a busy machine req/s favours the confined variants (CPU ms/req less so).\n');
    }
    printNoise(n, o.repeats, out);
    if (failed) out(`WARNING: ${failed} run(s) had failed or non-2xx requests: those figures are not comparable\n`);

    const file = o.out ? path.resolve(o.out) : path.join(ROOT, 'bench', 'results', `bench-${started.toISOString().slice(0, 10)}.json`);
    mkdirSync(path.dirname(file), { recursive: true });
    const result = {
      benchmark: 'fhirguard bench',
      date: started.toISOString(),
      durationSeconds,
      command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
      machine: m,
      settings: {
        quick: o.quick,
        seconds: o.seconds,
        warmupSeconds: o.warmup,
        repeats: o.repeats,
        connections: o.connections,
        transactionConnections: o.transactionConnections,
        loadGenerator: `autocannon ${autocannonVersion()} (own process)`,
        pinning: plan ?? { none: noPin },
        proxyLogLevel: o.proxyLogLevel,
        workersPerTier: 1,
        order: 'workload by workload (reads before writes), each repeated with the variants in rotating order',
      },
      database: { resources: seeded.resources, patients: seeded.patients.length, bundles: syntheaFiles(o.patients).map((f) => path.basename(f)) },
      variants: o.variants.map((v) => ({ id: v, describe: DESCRIBE[v], skipped: skipped.get(v) ?? null })),
      workloads: o.workloads.map((name) => {
        const w = workloads[name];
        return { name, describe: w.describe, tier: w.tier, connections: w.connections, requests: w.requests.length };
      }),
      cells,
      noise: n,
      failedRuns: failed,
    };
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    out(`\nresults: ${file}\n`);
    if (failed) process.exitCode = 1;
  } finally {
    // Systems first: their stop also removes containers or plain workers a stuck agent left.
    for (const sys of [...systems.values()].reverse()) await sys.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadConfig(t: Target, w: Workload, o: Pick<Options, 'seconds' | 'warmup'>, connections: number): LoadConfig {
  return {
    origin: t.origin,
    socketPath: t.socketPath,
    requests: w.requests.map((r) => ({ method: r.method, path: t.base + r.path, body: r.body, headers: r.body ? { 'content-type': 'application/fhir+json' } : undefined })),
    connections,
    seconds: o.seconds,
    warmupSeconds: o.warmup,
    timeoutSeconds: 60,
  };
}

/** One request of the workload, answered 2xx, or the benchmark stops before measuring anything. */
async function probe(v: VariantId, w: Workload, t: Target): Promise<void> {
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

function autocannonVersion(): string {
  return (JSON.parse(readFileSync(require.resolve('autocannon/package.json'), 'utf8')) as { version: string }).version;
}

main().catch(async (err) => {
  say(`bench failed: ${(err as Error).stack ?? err}`);
  await stopAll();
  process.exit(1);
});
