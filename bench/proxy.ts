// What the front door costs a FHIR read. One run measures GET read-by-id
// (`/fhir/Patient/<id>`) on the same upstream three ways:
//   direct     the upstream itself (no proxy)
//   bare       a minimal Fastify app with only @fastify/http-proxy to that upstream
//   fhirguard  the real `fhirguard proxy` process (classify, policy, validate, route)
// plus `fhirguard (log info)`: the same at the default log level, which logs every request.
// It prints req/s, p50 and p99 for each, and the ratios the issue sets as targets:
// fhirguard throughput >= 90% of bare, added p50 <= 100 µs over bare.
//
// Load comes from wrk (Debian package, C, its own process: the load generator shares no
// event loop with what it measures) with fixed connections and duration; latency is taken
// twice: under that load (where p50 is mostly queueing) and with one connection (the cost
// of one request, which is what "added p50" means). Variants run interleaved for several
// rounds after a warm-up (in reverse order every other round); each variant's median and
// min-max are reported, and the throughput ratio is the median of the per-round ratios, so
// the machine's drift between rounds (larger than the difference measured) cancels. Each loaded
// run also reads the measured front process's CPU time (/proc): the proxy's CPU per request,
// and bare's over fhirguard's, is the same comparison with far less of the machine's noise.
// The upstream is a fast node:http server answering a fixed Patient (so the proxies' cost
// dominates); a second pass runs against the real reference worker (read-only, SQLite).
// Between the two, a head-to-head (lib/head-to-head.ts) loads bare and fhirguard at once on
// one shared CPU, so both meet the same machine in the same seconds, and then bare against a
// twin of itself as the method's control. On this shared VM runs one after the other differ
// by more than the margin; a head-to-head's rounds agree within a few percent, and the
// throughput target is judged on it (when it could run: 2+ CPUs and taskset), on the slowest
// of the fhirguard processes it measured (see printTargets). A last head-to-head sets
// fhirguard without authorization against fhirguard requiring bearer tokens (a user token,
// then a patient token whose answers are checked against the compartment): the CPU a
// remembered token adds to a read, against the target of 10 µs. Results go to
// bench/results/proxy-<date>.json.
//
// Run: npx tsc -p tsconfig.json && npm run bench:proxy [-- --seconds 8 --rounds 5 --connections 16 --warmup 12 --h2h-rounds 6 --h2h-seconds 5 --h2h-processes 3]

import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BARE_SCRIPT } from './lib/bare';
import { cpuSeconds } from './lib/cpu-time';
import { describe, load, machine as machineInfo } from './lib/machine';
import { headToHead, ratioOf, type HeadToHead } from './lib/head-to-head';
import { firstLine, freePort, spawnLogged, stopAll, waitFor } from './lib/procs';
import { pinPid, sharedCpuPlan } from './lib/pin';
import { stats, type Stats } from './lib/stats';
import { BIN, ROOT } from './lib/system';
import { startBenchIssuer } from './lib/issuer';
import { wrkInstalled, wrkRunner, type WrkRun as Run } from './lib/wrk';

const SELF = __filename;
const PATIENT_FILE = join(ROOT, '..', 'shared', 'corpus', 'r4-examples', 'json', 'patient-example.json');
const TARGET_RATIO = 0.9;
const TARGET_ADDED_P50_US = 100;
/** Most CPU a remembered bearer token may add to a read. */
const TARGET_TOKEN_ADDED_CPU_US = 10;
const BENCH_AUDIENCE = 'https://bench.fhirguard.test/fhir';

// ---------------------------------------------------------------------------------------
// The upstream runs as its own process: `node dist/bench/proxy.js upstream` (the bare proxy:
// bench/lib/bare.ts).

/** The fast upstream: a fixed Patient for any read by id, a CapabilityStatement for /metadata. */
function runUpstream(): void {
  const patient = JSON.parse(readFileSync(PATIENT_FILE, 'utf8'));
  const cache = new Map<string, Buffer>();
  const capability = Buffer.from(JSON.stringify({ resourceType: 'CapabilityStatement', status: 'active', date: '2024-01-01', kind: 'instance', fhirVersion: '4.0.1', format: ['json'] }));
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const url = req.url ?? '/';
    let body: Buffer | undefined;
    if (url === '/metadata') body = capability;
    else {
      const m = /^\/Patient\/([A-Za-z0-9.-]{1,64})$/.exec(url);
      if (m) {
        body = cache.get(m[1]);
        if (!body) cache.set(m[1], (body = Buffer.from(JSON.stringify({ ...patient, id: m[1] }))));
      }
    }
    req.resume();
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"not here"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/fhir+json; charset=utf-8', 'content-length': body.length, etag: 'W/"1"' }).end(body);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as net.AddressInfo).port }) + '\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------------------
// The driver.

/** A measured process: where it listens and its pid (for its CPU time). */
interface Started {
  port: number;
  pid: number;
}

/** Starts a node script (a role of this file, or the bare proxy) and waits for its `{port}` line. */
async function startRole(name: string, args: string[]): Promise<Started> {
  const child = spawnLogged(name, process.execPath, args, { cwd: ROOT });
  const port = await firstLine(child, name, (l) => (l.startsWith('{"port"') ? (JSON.parse(l) as { port: number }).port : undefined));
  return { port, pid: child.pid! };
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(url, init);
  return { status: res.status, text: await res.text() };
}

/**
 * `fhirguard proxy` with one read tier on `upstream`; ports picked here so the log level can be
 * warn. With `issuer`, its policy requires bearer tokens from that issuer for BENCH_AUDIENCE.
 */
async function startFhirguard(dir: string, name: string, upstream: string, logLevel: string, issuer?: string): Promise<{ url: string; pid: number }> {
  const stem = join(dir, name.replace(/\W+/g, '-'));
  const policy = `${stem}.yaml`;
  const authorization = issuer ? ['authorization:', `  issuer: ${issuer}`, `  audience: ${BENCH_AUDIENCE}`] : [];
  writeFileSync(
    policy,
    [...authorization, 'tiers:', '  - name: read', `    upstreams: ["${upstream}"]`, 'rules:', '  - resources: ["*"]', '    interactions: [read, capabilities]', '    tier: read', ''].join('\n'),
  );
  const [listen, admin] = [await freePort(), await freePort()];
  // Its log goes to a file, as in production: piped to this process, the log-info variant's
  // ~9,000 lines a second kept this process busy into the next variant's run.
  const log = openSync(`${stem}.log`, 'a');
  const child = spawnLogged(
    name,
    process.execPath,
    [BIN, 'proxy', '--policy', policy, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--processes', '1', '--log-level', logLevel],
    {
      cwd: ROOT,
      stdout: log,
    },
  );
  closeSync(log);
  try {
    await waitFor(name, async () => (await get(`http://127.0.0.1:${admin}/readyz`)).status === 200, 120_000, child);
  } catch (err) {
    // Its log is in the file, not in the tail spawnLogged keeps: say what it said.
    throw new Error(`${(err as Error).message}; its log ends:\n${readFileSync(`${stem}.log`, 'utf8').slice(-3000)}`);
  }
  return { url: `http://127.0.0.1:${listen}/fhir`, pid: child.pid! };
}

async function startWorkerTcp(name: string, db: string, readOnly: boolean): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const args = [BIN, 'worker', '--tier', readOnly ? 'read' : 'write', '--db', db, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn'];
  if (readOnly) args.push('--read-only');
  const child = spawnLogged(name, process.execPath, args, { stdout: 'ignore', cwd: ROOT });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(name, async () => (await get(`${url}/metadata`)).status === 200, 120_000, child);
  return { url, pid: child.pid! };
}

let wrk: ReturnType<typeof wrkRunner>;

interface VariantResult {
  variant: string;
  url: string;
  loaded: Run[];
  single: Run[];
  rps: Stats;
  p50us: Stats;
  p99us: Stats;
  singleP50us: Stats;
  singleP99us: Stats;
  /** CPU time the variant's front process (the proxy; the upstream for direct) spent per request under load. */
  cpuUsPerReq: Stats;
}

/** One variant to measure: its URL and the process whose CPU time is its cost. */
interface Target {
  variant: string;
  url: string;
  pid: number;
}

function summarise(variant: string, url: string, loaded: Run[], single: Run[], cpuUs: number[]): VariantResult {
  return {
    variant,
    url,
    loaded,
    single,
    cpuUsPerReq: stats(cpuUs),
    rps: stats(loaded.map((r) => r.rps)),
    p50us: stats(loaded.map((r) => r.p50us)),
    p99us: stats(loaded.map((r) => r.p99us)),
    singleP50us: stats(single.map((r) => r.p50us)),
    singleP99us: stats(single.map((r) => r.p99us)),
  };
}

interface Pass {
  upstream: string;
  variants: VariantResult[];
  ratio: {
    /** Median over rounds of fhirguard's req/s over bare's in the same round (the target's figure). */
    throughputVsBare: number;
    /** The per-round ratios' min-max. */
    throughputVsBareRange: [number, number];
    /** fhirguard's median req/s over bare's median req/s. */
    throughputVsBareOfMedians: number;
    /** Median over rounds of bare's proxy CPU per request over fhirguard's: the throughput
     * ratio a CPU-bound proxy would reach, and a figure the shared machine disturbs less. */
    cpuCapacityVsBare: number;
    /** fhirguard's median proxy CPU per request minus bare's, in µs. */
    addedCpuUsPerReq: number;
    addedP50usSingle: number;
    addedP50usLoaded: number;
    addedP99usSingle: number;
  };
}

async function measure(label: string, targets: Target[], rounds: number, o: { seconds: number; latencySeconds: number; connections: number; warmup: number }): Promise<Pass> {
  for (const t of targets) {
    const probe = await get(t.url);
    if (probe.status !== 200 || !probe.text.includes('"resourceType":"Patient"')) throw new Error(`${t.variant}: ${t.url} answered ${probe.status}: ${probe.text.slice(0, 300)}`);
  }
  process.stderr.write(`\n${label}: warm-up ${o.warmup} s per variant\n`);
  for (const t of targets) await wrk(t.url, o.connections, o.warmup);
  const loaded = new Map<string, Run[]>(targets.map((t) => [t.variant, []]));
  const single = new Map<string, Run[]>(targets.map((t) => [t.variant, []]));
  const cpu = new Map<string, number[]>(targets.map((t) => [t.variant, []]));
  for (let round = 1; round <= rounds; round++) {
    // Every other round runs the variants in reverse, so none is always measured right after
    // another one heated the machine.
    for (const t of round % 2 ? targets : [...targets].reverse()) {
      const cpuBefore = cpuSeconds(t.pid);
      const l = await wrk(t.url, o.connections, o.seconds);
      const cpuUs = ((cpuSeconds(t.pid) - cpuBefore) * 1e6) / l.requests;
      cpu.get(t.variant)!.push(cpuUs);
      const s = await wrk(t.url, 1, o.latencySeconds);
      for (const r of [l, s]) if (r.errors > 0) throw new Error(`${t.variant}: ${r.errors} failed requests in a run`);
      loaded.get(t.variant)!.push(l);
      single.get(t.variant)!.push(s);
      process.stderr.write(
        `  round ${round} ${t.variant.padEnd(20)} ${l.rps.toFixed(0).padStart(7)} req/s  ${cpuUs.toFixed(0).padStart(4)} µs CPU/req  p50 ${l.p50us} µs  p99 ${l.p99us} µs | 1 conn: p50 ${s.p50us} µs  p99 ${s.p99us} µs\n`,
      );
    }
  }
  const variants = targets.map((t) => summarise(t.variant, t.url, loaded.get(t.variant)!, single.get(t.variant)!, cpu.get(t.variant)!));
  const by = (v: string) => variants.find((x) => x.variant === v)!;
  const bare = by('bare');
  const fg = by('fhirguard');
  // The machine is shared: its speed drifts between rounds by more than the difference being
  // measured, so the headline ratio pairs the two proxies' runs of the same round.
  const bareRuns = loaded.get('bare')!;
  const perRound = loaded.get('fhirguard')!.map((r, i) => r.rps / bareRuns[i].rps);
  const paired = stats(perRound);
  // The same question asked of CPU time: bare's CPU per request over fhirguard's, per round.
  const bareCpu = cpu.get('bare')!;
  const cpuPaired = stats(cpu.get('fhirguard')!.map((c, i) => bareCpu[i] / c));
  return {
    upstream: label,
    variants,
    ratio: {
      throughputVsBare: paired.median,
      throughputVsBareRange: [paired.min, paired.max],
      throughputVsBareOfMedians: fg.rps.median / bare.rps.median,
      cpuCapacityVsBare: cpuPaired.median,
      addedCpuUsPerReq: fg.cpuUsPerReq.median - bare.cpuUsPerReq.median,
      addedP50usSingle: fg.singleP50us.median - bare.singleP50us.median,
      addedP50usLoaded: fg.p50us.median - bare.p50us.median,
      addedP99usSingle: fg.singleP99us.median - bare.singleP99us.median,
    },
  };
}

/** The head-to-head measurements: fhirguard processes against bare, and bare against a twin of itself. */
interface HeadToHeads {
  /** One per fhirguard process: the first is the one measured above, the others fresh. */
  fhirguard: HeadToHead[];
  /** Over the counted rounds of every fhirguard process (the target takes the slowest process instead: printTargets). */
  ratio: Stats | null;
  control: HeadToHead;
}

/**
 * bare and fhirguard loaded at once on one shared CPU (lib/head-to-head.ts), once per
 * fhirguard process (`processes` of them: the one measured one after the other, then fresh
 * ones, since one process's compiled code can sit above or below another's for its whole
 * life: until src/proxy/tick-shape.ts, by 10-15% for the process that idled before its first
 * load), then bare and a second bare the same way: identical processes should come
 * out at 100%, and how far they do not is how far the method itself can be trusted. Null
 * (with why) where it cannot run.
 */
async function measureHeadToHead(
  upstream: Started,
  bare: Target,
  fg: Target,
  fresh: (n: number) => Promise<Target>,
  dir: string,
  o: { rounds: number; seconds: number; warmup: number; connections: number; processes: number },
): Promise<{ result: HeadToHeads | null; why: string }> {
  const { plan, why } = sharedCpuPlan();
  if (!plan) return { result: null, why };
  const pinnedWrk = wrkRunner(dir, plan.rest);
  const log = (line: string) => process.stderr.write(line + '\n');
  const opts = { ...o, sharedCpu: plan.shared, allCpus: plan.all };
  pinPid(upstream.pid, plan.rest);
  try {
    process.stderr.write(`\nhead-to-head on CPU ${plan.shared} (load generators and upstream on CPU ${plan.rest})\n`);
    const fhirguard: HeadToHead[] = [];
    for (let n = 1; n <= o.processes; n++) fhirguard.push(await headToHead(bare, n === 1 ? fg : await fresh(n), opts, pinnedWrk, log));
    const twin = await startRole('bare (twin)', [BARE_SCRIPT, `http://127.0.0.1:${upstream.port}`]);
    const twinUrl = new URL(bare.url);
    twinUrl.port = String(twin.port);
    const control = await headToHead(bare, { variant: 'bare (twin)', url: twinUrl.href, pid: twin.pid }, opts, pinnedWrk, log);
    return { result: { fhirguard, ratio: ratioOf(fhirguard.flatMap((h) => h.rounds)), control }, why: '' };
  } finally {
    pinPid(upstream.pid, plan.all);
  }
}

interface TokenCost {
  /** Each contender (a token-carrying fhirguard) against the same fhirguard without authorization. */
  pairs: Array<{ variant: string; headToHead: HeadToHead; addedCpuUs: Stats | null }>;
}

/**
 * What a remembered bearer token adds to a read: fhirguard without authorization against
 * fhirguard with it, on one shared CPU, once with a user token (scopes checked) and once with a
 * patient token (scopes checked, and the answer held and checked against the compartment). The
 * added CPU per read is the per-round difference of each process's CPU time per request.
 */
async function measureTokenCost(
  upstream: Started,
  fg: Target,
  dir: string,
  id: string,
  o: { rounds: number; seconds: number; warmup: number; connections: number },
): Promise<{ result: TokenCost | null; why: string }> {
  const { plan, why } = sharedCpuPlan();
  if (!plan) return { result: null, why };
  const issuer = await startBenchIssuer();
  const pinnedWrk = wrkRunner(dir, plan.rest);
  const opts = { ...o, sharedCpu: plan.shared, allCpus: plan.all };
  pinPid(upstream.pid, plan.rest);
  try {
    process.stderr.write(`\nbearer tokens: fhirguard with authorization against fhirguard without, on CPU ${plan.shared}\n`);
    const withAuth = await startFhirguard(dir, 'fhirguard (authorization)', `http://127.0.0.1:${upstream.port}`, 'warn', issuer.issuer);
    const tokens = [
      { variant: 'fhirguard (user token)', token: await issuer.mint(BENCH_AUDIENCE, { scope: 'user/Patient.rs', client_id: 'bench' }) },
      { variant: 'fhirguard (patient token)', token: await issuer.mint(BENCH_AUDIENCE, { scope: 'patient/Patient.rs', client_id: 'bench', patient: id }) },
    ];
    const pairs: TokenCost['pairs'] = [];
    for (const t of tokens) {
      const contender = { variant: t.variant, url: `${withAuth.url}/Patient/${id}`, pid: withAuth.pid, headers: { authorization: `Bearer ${t.token}` } };
      const probe = await get(contender.url, { headers: contender.headers });
      if (probe.status !== 200) throw new Error(`${t.variant}: ${contender.url} answered ${probe.status}: ${probe.text.slice(0, 300)}`);
      const h = await headToHead(fg, contender, opts, pinnedWrk, (line) => process.stderr.write(line + '\n'));
      const counted = h.rounds.filter((r) => r.counted);
      pairs.push({ variant: t.variant, headToHead: h, addedCpuUs: counted.length * 2 >= h.rounds.length ? stats(counted.map((r) => r.bCpuUsPerReq - r.aCpuUsPerReq)) : null });
    }
    return { result: { pairs }, why: '' };
  } finally {
    pinPid(upstream.pid, plan.all);
    await issuer.close();
  }
}

function printTokenCost(t: TokenCost | null, why: string): void {
  if (!t) {
    process.stdout.write(`\nbearer tokens: NOT measured (${why})\n`);
    return;
  }
  process.stdout.write('\nbearer tokens (remembered after the first request), head-to-head against fhirguard without authorization:\n');
  for (const p of t.pairs) {
    const a = p.addedCpuUs;
    process.stdout.write(
      `  ${p.variant}: ${a ? `${a.median >= 0 ? '+' : ''}${a.median.toFixed(1)} µs CPU per read (median; ${a.min.toFixed(1)} to ${a.max.toFixed(1)})` : 'no figure (too few saturated rounds)'}, throughput ${p.headToHead.ratio ? pct(p.headToHead.ratio.median) : '-'} of fhirguard's\n`,
    );
  }
}

function printHeadToHead(h: HeadToHeads | null, why: string, o: { rounds: number; seconds: number }): void {
  if (!h) {
    process.stdout.write(`\nhead-to-head: NOT measured (${why}); the throughput target is judged on the runs one after the other\n`);
    return;
  }
  const range = (x: Stats | null) => (x ? `${pct(x.median)} (median; ${pct(x.min)}-${pct(x.max)})` : 'no figure (too few saturated rounds)');
  const line = (x: HeadToHead) => `${x.b} vs ${x.a}: ${range(x.ratio)}, ${x.rounds.filter((r) => r.counted).length} of ${x.rounds.length} rounds saturated the shared CPU`;
  process.stdout.write(`\nhead-to-head on one shared CPU (CPU ${h.control.sharedCpu}), ${o.rounds} rounds x ${o.seconds} s per process, both loaded at once:\n`);
  for (const x of h.fhirguard) process.stdout.write(`  ${line(x)}\n`);
  process.stdout.write(`  fhirguard vs bare, all ${h.fhirguard.length} processes: ${range(h.ratio)}\n  control, ${line(h.control)}\n`);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function printPass(p: Pass, connections: number): void {
  const line = (cells: string[]) => process.stdout.write(cells.map((c, i) => (i === 0 ? c.padEnd(20) : c.padStart(18))).join('') + '\n');
  process.stdout.write(`\n${p.upstream}\n`);
  line(['variant', 'req/s (min-max)', 'CPU µs/req', `p50 µs @${connections}`, `p99 µs @${connections}`, 'p50 µs @1', 'p99 µs @1']);
  for (const v of p.variants) {
    line([
      v.variant,
      `${v.rps.median.toFixed(0)} (${v.rps.min.toFixed(0)}-${v.rps.max.toFixed(0)})`,
      `${v.cpuUsPerReq.median.toFixed(1)}`,
      `${v.p50us.median.toFixed(0)}`,
      `${v.p99us.median.toFixed(0)}`,
      `${v.singleP50us.median.toFixed(0)}`,
      `${v.singleP99us.median.toFixed(0)}`,
    ]);
  }
  const r = p.ratio;
  process.stdout.write(
    `fhirguard throughput vs bare, one after the other: ${pct(r.throughputVsBare)} (median of per-round ratios, ${pct(r.throughputVsBareRange[0])}-${pct(r.throughputVsBareRange[1])}; ` +
      `of the medians: ${pct(r.throughputVsBareOfMedians)})\n` +
      `proxy CPU per request: fhirguard ${r.addedCpuUsPerReq >= 0 ? '+' : ''}${r.addedCpuUsPerReq.toFixed(1)} µs over bare; bare's over fhirguard's: ${pct(r.cpuCapacityVsBare)} (median of per-round ratios)\n` +
      `added p50 vs bare, 1 connection: ${r.addedP50usSingle.toFixed(0)} µs; ` +
      `under ${connections} connections: ${r.addedP50usLoaded.toFixed(0)} µs; added p99, 1 connection: ${r.addedP99usSingle.toFixed(0)} µs\n`,
  );
}

/**
 * The issue's targets, judged on the fixed upstream (where the proxies' cost is not hidden
 * behind the upstream's). Throughput: on the head-to-head when it ran (the runs one after the
 * other are printed above, but the machine's drift between them is larger than the margin),
 * and on its slowest fhirguard process, not the median over processes: in every run so far
 * the process that had been through the runs one after the other stayed ~10 points below the
 * fresh ones, for a reason not yet found, and a long-running front door may be in that state.
 * Added p50 on one connection (the cost of one request, not queueing).
 */
function printTargets(fast: Pass, h: HeadToHeads | null, tokens: TokenCost | null): void {
  const medians = (h?.fhirguard ?? []).map((x) => x.ratio?.median).filter((m): m is number => m !== undefined);
  const [throughput, how] = medians.length
    ? [Math.min(...medians), `head-to-head, the slowest of ${medians.length} fhirguard processes; all: ${medians.map(pct).join(', ')}`]
    : [fast.ratio.throughputVsBare, 'one after the other, median of per-round ratios'];
  const added = fast.ratio.addedP50usSingle;
  process.stdout.write(
    `\ntargets (fixed upstream):\n` +
      `  throughput >= ${TARGET_RATIO * 100}% of bare: ${pct(throughput)} (${how}): ${throughput >= TARGET_RATIO ? 'met' : 'NOT met'}\n` +
      `  added p50 <= ${TARGET_ADDED_P50_US} µs over bare (1 connection): ${added.toFixed(0)} µs: ${added <= TARGET_ADDED_P50_US ? 'met' : 'NOT met'}\n`,
  );
  for (const p of tokens?.pairs ?? []) {
    const a = p.addedCpuUs;
    process.stdout.write(
      `  ${p.variant} adds <= ${TARGET_TOKEN_ADDED_CPU_US} µs CPU per read: ${a ? `${a.median.toFixed(1)} µs: ${a.median <= TARGET_TOKEN_ADDED_CPU_US ? 'met' : 'NOT met'}` : 'no figure'}\n`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '8' },
      'latency-seconds': { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      // A front door runs for days, so what is compared is steady state. fhirguard runs more
      // JavaScript per request than bare and its optimised code settles later: after a 3 s
      // warm-up its first round was its slowest in two runs of two (80-81% of bare, the later
      // rounds 89-106%).
      warmup: { type: 'string', default: '12' },
      'worker-rounds': { type: 'string', default: '3' },
      // Head-to-head (lib/head-to-head.ts): rounds of both proxies loaded at once on one CPU.
      'h2h-rounds': { type: 'string', default: '6' },
      'h2h-seconds': { type: 'string', default: '5' },
      'h2h-processes': { type: 'string', default: '3' },
    },
  });
  const o = {
    seconds: Number(values.seconds),
    latencySeconds: Number(values['latency-seconds']),
    connections: Number(values.connections),
    warmup: Number(values.warmup),
  };
  const rounds = Number(values.rounds);
  if (!wrkInstalled()) throw new Error('wrk is not installed (Debian package wrk; scripts/install.sh installs it)');

  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-proxy-'));
  wrk = wrkRunner(dir);
  const started = new Date();
  const loadStart = load();
  try {
    // Pass 1: the fast fixed upstream.
    const up = await startRole('upstream', [SELF, 'upstream']);
    const upstream = `http://127.0.0.1:${up.port}`;
    const bare = await startRole('bare', [BARE_SCRIPT, upstream]);
    const fg = await startFhirguard(dir, 'fhirguard', upstream, 'warn');
    const fgInfo = await startFhirguard(dir, 'fhirguard-info', upstream, 'info');
    const id = 'bench-1';
    const bareTarget: Target = { variant: 'bare', url: `http://127.0.0.1:${bare.port}/fhir/Patient/${id}`, pid: bare.pid };
    const fgTarget: Target = { variant: 'fhirguard', url: `${fg.url}/Patient/${id}`, pid: fg.pid };
    const fast = await measure(
      'fixed Patient upstream (node:http)',
      [{ variant: 'direct', url: `${upstream}/Patient/${id}`, pid: up.pid }, bareTarget, fgTarget, { variant: 'fhirguard (log info)', url: `${fgInfo.url}/Patient/${id}`, pid: fgInfo.pid }],
      rounds,
      o,
    );
    // Each process gets half a CPU there, so twice the warm-up gives it the same CPU time to settle.
    const h2hOptions = { rounds: Number(values['h2h-rounds']), seconds: Number(values['h2h-seconds']), warmup: 2 * o.warmup, connections: o.connections, processes: Number(values['h2h-processes']) };
    const freshFhirguard = async (n: number): Promise<Target> => {
      const fresh = await startFhirguard(dir, `fhirguard #${n}`, upstream, 'warn');
      return { variant: `fhirguard #${n}`, url: `${fresh.url}/Patient/${id}`, pid: fresh.pid };
    };
    const h2h = await measureHeadToHead(up, bareTarget, fgTarget, freshFhirguard, dir, h2hOptions);
    const tokenCost = await measureTokenCost(up, fgTarget, dir, id, h2hOptions);

    // Pass 2: the real reference worker (read-only, SQLite) holding the same Patient.
    const db = join(dir, 'fhir.db');
    const writer = await startWorkerTcp('write worker', db, false);
    const patient = JSON.parse(readFileSync(PATIENT_FILE, 'utf8'));
    delete patient.id;
    const created = await fetch(`${writer.url}/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(patient) });
    if (created.status !== 201) throw new Error(`creating the Patient on the worker answered ${created.status}`);
    const wid = ((await created.json()) as { id: string }).id;
    const reader = await startWorkerTcp('read worker', db, true);
    const workerBare = await startRole('bare (worker)', [BARE_SCRIPT, reader.url]);
    const workerFg = await startFhirguard(dir, 'fhirguard (worker)', reader.url, 'warn');
    const worker = await measure(
      'reference worker (read-only, SQLite)',
      [
        { variant: 'direct', url: `${reader.url}/Patient/${wid}`, pid: reader.pid },
        { variant: 'bare', url: `http://127.0.0.1:${workerBare.port}/fhir/Patient/${wid}`, pid: workerBare.pid },
        { variant: 'fhirguard', url: `${workerFg.url}/Patient/${wid}`, pid: workerFg.pid },
      ],
      Number(values['worker-rounds']),
      o,
    );
    const machine = machineInfo(loadStart);
    const settings = { ...o, rounds, workerRounds: Number(values['worker-rounds']), headToHead: h2hOptions, loadGenerator: 'wrk -t1', request: 'GET /fhir/Patient/<id>' };

    process.stdout.write(`\nfhirguard proxy benchmark, ${started.toISOString()}\n`);
    process.stdout.write(`machine: ${describe(machine)}\n`);
    process.stdout.write(
      `load: wrk, 1 thread, ${o.connections} connections x ${o.seconds} s, then 1 connection x ${o.latencySeconds} s; ${rounds} interleaved rounds (worker: ${settings.workerRounds}); medians (min-max)\n`,
    );
    printPass(fast, o.connections);
    printHeadToHead(h2h.result, h2h.why, h2hOptions);
    printTokenCost(tokenCost.result, tokenCost.why);
    printPass(worker, o.connections);
    printTargets(fast, h2h.result, tokenCost.result);

    const out = join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `proxy-${started.toISOString().slice(0, 10)}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          benchmark: 'proxy',
          date: started.toISOString(),
          machine,
          settings,
          targets: { throughputVsBare: TARGET_RATIO, addedP50us: TARGET_ADDED_P50_US, tokenAddedCpuUs: TARGET_TOKEN_ADDED_CPU_US },
          passes: [fast, worker],
          headToHead: h2h.result ?? { notMeasured: h2h.why },
          tokens: tokenCost.result ?? { notMeasured: tokenCost.why },
        },
        null,
        2,
      ) + '\n',
    );
    process.stdout.write(`\nresults: ${file}\n`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

const role = process.argv[2];
if (role === 'upstream') runUpstream();
else
  main().catch(async (err) => {
    process.stderr.write(`bench:proxy failed: ${(err as Error).stack ?? err}\n`);
    await stopAll();
    process.exit(1);
  });
