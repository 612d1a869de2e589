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
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { BARE_SCRIPT } from './lib/bare';
import { describe, load, machine, type Machine } from './lib/machine';
import { measureRun } from './lib/measure';
import { cpuPlan, pinPid, type CpuPlan } from './lib/pin';
import { firstLine, spawnLogged, stopAll } from './lib/procs';
import { addRatios, noise, printNoise, printWorkload, summarise, type Cell, type Run } from './lib/report';
import { seed, syntheaFiles, withLoader, type Seeded } from './lib/seed';
import { enforcementMismatch, ROOT, startSystem, type Enforcement, type System } from './lib/system';
import { probe, targetOf, workerOf, type Fleet } from './lib/targets';
import { DESCRIBE, parseVariants, SYSTEM_OF, VARIANTS, type VariantId } from './lib/variants';
import { buildWorkloads, createSubject, WORKLOADS, type Workload, type WorkloadName } from './lib/workloads';

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
  const num = (v: string | undefined, dflt: number, name: string, min = Number.MIN_VALUE): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min === Number.MIN_VALUE ? 'above 0' : min} (got '${v}')`);
    return n;
  };
  const workloads = values
    .workloads!.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const w of workloads) if (!(WORKLOADS as string[]).includes(w)) throw new Error(`unknown workload '${w}' (one of ${WORKLOADS.join(', ')})`);
  return {
    quick,
    variants: parseVariants(values.variants!),
    workloads: WORKLOADS.filter((w) => workloads.includes(w)),
    seconds: num(values.seconds, quick ? 2 : 10, 'seconds'),
    warmup: num(values.warmup, quick ? 1 : 3, 'warmup', 0),
    repeats: Math.round(num(values.repeats, quick ? 1 : 3, 'repeats', 1)),
    connections: Math.round(num(values.connections, 8, 'connections', 1)),
    transactionConnections: Math.round(num(values['transaction-connections'], 2, 'transaction-connections', 1)),
    /** Patient bundles loaded (all 20 by default; the smallest few with --quick). */
    patients: values.patients !== undefined ? Math.round(num(values.patients, 20, 'patients', 1)) : quick ? 3 : undefined,
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

interface SetUp {
  fleet: Fleet;
  seeded: Seeded;
  workloads: Record<WorkloadName, Workload>;
}

/**
 * Loads the database (a loader worker of its own, before anything measured starts), then starts
 * the unconfined system (always: its workers are direct's and bare's), the enforced systems the
 * variants need (each checked on the agent's GET /enforcement; one that falls short is skipped,
 * loudly), and the bare proxies.
 */
async function setUp(o: Options, dir: string, plan: CpuPlan | null, skipped: Map<VariantId, string>, systems: Map<Enforcement, System>): Promise<SetUp> {
  const db = path.join(dir, 'data', 'fhir.db');
  const { seeded, subject } = await withLoader(db, dir, async (l) => ({ seeded: await seed(l, syntheaFiles(o.patients)), subject: await createSubject(l) }));
  say(`seeded: ${seeded.resources} resources (${seeded.patients.length} patients) in ${seeded.seconds.toFixed(1)} s`);
  const workloads = buildWorkloads(seeded.patients, subject, o);
  const policy = benchPolicy(dir);
  const cpus = plan?.measured ?? null;
  const start = (e: Enforcement): Promise<System> => startSystem({ enforcement: e, dir, db, policy, cpus, proxyLogLevel: o.proxyLogLevel });
  const plain = await start('unconfined');
  systems.set('unconfined', plain);
  const mismatch = enforcementMismatch('unconfined', await plain.enforcementReport());
  if (mismatch) throw new Error(`the unconfined system is not what it should be: ${mismatch}`);

  for (const e of ['seccomp', 'seccomp+ebpf'] as Enforcement[]) {
    const vs = o.variants.filter((v) => SYSTEM_OF[v] === e && !skipped.has(v));
    if (!vs.length) continue;
    const skip = (why: string): void => {
      for (const v of vs) skipped.set(v, why);
      say(`SKIPPED ${vs.join(', ')}: ${why}`);
    };
    let sys: System;
    try {
      sys = await start(e);
    } catch (err) {
      skip(`its system did not start: ${(err as Error).message}`);
      continue;
    }
    const short = enforcementMismatch(e, await sys.enforcementReport());
    if (short) {
      skip(`the agent does not enforce ${e}: ${short}`);
      await sys.stop();
      continue;
    }
    systems.set(e, sys);
  }

  const fleet: Fleet = { systems, plainWorkers: await plain.workers(), bare: new Map() };
  if (o.variants.includes('bare')) {
    for (const tier of new Set(o.workloads.map((w) => workloads[w].tier))) {
      const child = spawnLogged(`bare proxy (${tier})`, process.execPath, [BARE_SCRIPT, workerOf(fleet.plainWorkers, tier).address], { cpus });
      const port = await firstLine(child, 'bare proxy', (l) => (l.startsWith('{"port"') ? (JSON.parse(l) as { port: number }).port : undefined));
      fleet.bare.set(tier, { port, pid: child.pid! });
    }
  }
  return { fleet, seeded, workloads };
}

/**
 * Every cell, workload by workload and reads first (the writes grow the database, and a
 * search's cost grows with it, so reads see the seeded database in every repeat); each
 * workload repeated with the variants in rotating order.
 */
async function measureAll(o: Options, s: SetUp, variants: VariantId[], dir: string, plan: CpuPlan | null, interrupted: () => boolean): Promise<Cell[]> {
  const runs = new Map<string, Run[]>();
  const total = o.repeats * o.workloads.length * variants.length;
  let done = 0;
  for (const name of o.workloads) {
    const w = s.workloads[name];
    for (let repeat = 0; repeat < o.repeats; repeat++) {
      const order = variants.map((_, i) => variants[(i + repeat) % variants.length]);
      for (const v of order) {
        if (interrupted()) throw new Error('interrupted');
        // runc's cgroup set-up resets a container's CPU affinity: pin its workers (again).
        if (plan && SYSTEM_OF[v] !== 'unconfined') for (const pid of await s.fleet.systems.get(SYSTEM_OF[v])!.workerPids()) pinPid(pid, plan.measured);
        const r = await measureRun(targetOf(s.fleet, v, w), w, { dir, seconds: o.seconds, warmup: o.warmup, plan, repeat: repeat + 1 });
        const key = `${v}\n${name}`;
        runs.set(key, [...(runs.get(key) ?? []), r]);
        const failed = r.non2xx || r.errors ? `  FAILED: non-2xx ${r.non2xx}, errors ${r.errors} ${JSON.stringify(r.statusCodes)}` : '';
        say(
          `  [${++done}/${total}] repeat ${repeat + 1} ${name.padEnd(11)} ${v.padEnd(23)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)}  p90 ${r.p90.toFixed(2)}  p99 ${r.p99.toFixed(2)} ms` +
            `  CPU ${r.cpuMsPerReq.toFixed(2)} ms/req  autocannon CPU ${(r.loadgenCpu * 100).toFixed(0)}%  other ${(r.otherCpu * 100).toFixed(0)}%  load ${r.loadavg1}${failed}`,
        );
      }
    }
  }
  const cells = o.workloads.flatMap((name) => variants.map((v) => summarise(v, name, runs.get(`${v}\n${name}`) ?? [])));
  addRatios(cells);
  return cells;
}

interface Summary {
  started: Date;
  durationSeconds: number;
  machine: Machine;
  plan: CpuPlan | null;
  noPin: string;
  skipped: Map<VariantId, string>;
  variants: VariantId[];
  cells: Cell[];
  failed: number;
}

function printSummary(o: Options, s: SetUp, r: Summary): void {
  out(`\nfhirguard benchmark, ${r.started.toISOString()}, ${r.durationSeconds} s\n`);
  out(`machine: ${describe(r.machine)}\n`);
  out(`load: autocannon in its own process, ${o.seconds} s per run after ${o.warmup} s warm-up, ${o.repeats} repeat(s) per workload, variants in rotating order; medians over the repeats\n`);
  out(`pinning: ${r.plan ? r.plan.note : r.noPin}\n`);
  out(`database: ${s.seeded.resources} Synthea resources (${s.seeded.patients.length} patients), one worker per tier, shared by every variant\n`);
  for (const v of VARIANTS) out(`  ${v.padEnd(24)}${r.skipped.has(v) ? `SKIPPED: ${r.skipped.get(v)}` : o.variants.includes(v) ? DESCRIBE[v] : 'not selected'}\n`);
  for (const name of o.workloads) printWorkload(s.workloads[name], r.cells, out);
  out('\nx vs bare: against the bare @fastify/http-proxy; x vs unconf.: against fhirguard with unconfined workers. req/s above 1x is faster, p50 above 1x slower.\n');
  out('CPU ms/req: CPU time of the measured processes (proxy and workers) per request, which contention disturbs less than req/s.\n');
  if (r.variants.includes('fhirguard+seccomp+ebpf')) {
    out('While the seccomp+eBPF system runs, its sys_enter program is attached machine-wide: every variant pays its per-syscall lookup (bench/syscall-cost.ts).\n');
  }
  if (r.variants.some((v) => SYSTEM_OF[v] !== 'unconfined') && r.variants.some((v) => SYSTEM_OF[v] === 'unconfined')) {
    out('Under contention the agent weighs the /fhirguard cgroups as the containers they hold (src/enforce/cpu-weight.ts), while the plain\n');
    out('processes of direct, bare and fhirguard compete one by one: on a busy machine req/s favours the confined variants (CPU ms/req less so).\n');
  }
  printNoise(noise(r.cells), o.repeats, out);
  if (r.failed) out(`WARNING: ${r.failed} run(s) had failed or non-2xx requests: those figures are not comparable\n`);
}

function resultFile(o: Options, s: SetUp, r: Summary): object {
  return {
    benchmark: 'fhirguard bench',
    date: r.started.toISOString(),
    durationSeconds: r.durationSeconds,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: r.machine,
    settings: {
      quick: o.quick,
      seconds: o.seconds,
      warmupSeconds: o.warmup,
      repeats: o.repeats,
      connections: o.connections,
      transactionConnections: o.transactionConnections,
      loadGenerator: `autocannon ${autocannonVersion()} (own process)`,
      pinning: r.plan ?? { none: r.noPin },
      proxyLogLevel: o.proxyLogLevel,
      workersPerTier: 1,
      order: 'workload by workload (reads before writes), each repeated with the variants in rotating order',
    },
    database: { resources: s.seeded.resources, patients: s.seeded.patients.length, bundles: syntheaFiles(o.patients).map((f) => path.basename(f)) },
    variants: o.variants.map((v) => ({ id: v, describe: DESCRIBE[v], skipped: r.skipped.get(v) ?? null })),
    workloads: o.workloads.map((name) => {
      const w = s.workloads[name];
      return { name, describe: w.describe, tier: w.tier, connections: w.connections, requests: w.requests.length };
    }),
    cells: r.cells,
    noise: noise(r.cells),
    failedRuns: r.failed,
  };
}

async function main(): Promise<void> {
  const o = options();
  const started = new Date();
  const loadStart = load();
  const skipped = unavailable(o.variants);
  const { plan, why: noPin } = cpuPlan(o.pin);
  say(
    `fhirguard bench ${o.quick ? '(quick) ' : ''}${started.toISOString()}: ${o.variants.length} variants x ${o.workloads.length} workloads, ${o.seconds} s per run after ${o.warmup} s warm-up, ${o.repeats} repeat(s)`,
  );
  say(`pinning: ${plan ? plan.note : noPin}`);
  for (const [v, why] of skipped) say(`SKIPPED ${v}: ${why}`);

  const dir = mkdtempSync('/tmp/fg-bench-');
  chmodSync(dir, 0o755); // plain-process workers (the worker user) must reach the database
  const systems = new Map<Enforcement, System>();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    say('interrupted: stopping what the benchmark started');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const s = await setUp(o, dir, plan, skipped, systems);
    const variants = o.variants.filter((v) => !skipped.has(v));
    // Every target answers every workload's first request with a 2xx before anything is measured.
    for (const v of variants) for (const name of o.workloads) await probe(v, s.workloads[name], targetOf(s.fleet, v, s.workloads[name]));
    const cells = await measureAll(o, s, variants, dir, plan, () => interrupted);
    const failed = cells.flatMap((c) => c.runs).filter((r) => r.non2xx || r.errors).length;
    const summary: Summary = { started, durationSeconds: Math.round((Date.now() - started.getTime()) / 1000), machine: machine(loadStart), plan, noPin, skipped, variants, cells, failed };
    printSummary(o, s, summary);
    const file = o.out ? path.resolve(o.out) : path.join(ROOT, 'bench', 'results', `bench-${started.toISOString().slice(0, 10)}.json`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(resultFile(o, s, summary), null, 2) + '\n');
    out(`\nresults: ${file}\n`);
    if (failed) process.exitCode = 1;
  } finally {
    // Systems first: their stop also removes containers or plain workers a stuck agent left.
    for (const sys of [...systems.values()].reverse()) await sys.stop();
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
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
