// `npm run bench:front-door` (root): what confining the proxy costs. The same `fhirguard
// proxy` on the same fixed upstream (bench/proxy.ts's), once as a plain process and once
// under the front door's whole confinement (`fhirguard exec --tier proxy`: its container,
// identity, seccomp profile, eBPF policy switched to serve, egress list), both as the proxy
// identity. Measured head-to-head (both loaded at once on one shared CPU, lib/head-to-head.ts)
// with a control (the unconfined proxy against a twin of itself), and one after the other
// for the CPU each spends per read. Target: confined ≥ 97% of unconfined's reads.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveIdentities } from '../src/enforce/identities';
import { cpuSeconds } from './lib/cpu-time';
import { headToHead, type HeadToHead } from './lib/head-to-head';
import { describe as describeMachine, load, machine as machineInfo } from './lib/machine';
import { pinPid, sharedCpuPlan } from './lib/pin';
import { firstLine, freePort, spawnLogged, stopAll, waitFor } from './lib/procs';
import { stats, type Stats } from './lib/stats';
import { BIN, ROOT } from './lib/system';
import { wrkInstalled, wrkRunner } from './lib/wrk';

const TARGET = 0.97;

interface Proxy {
  variant: string;
  url: string;
  pid: number;
}

async function ready(admin: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${admin}/readyz`).then(
    (r) => r.status === 200,
    () => false,
  );
}

/** The pid of the `fhirguard proxy` listening on `port` (inside a container its host pid). */
function proxyPid(port: number): number {
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.includes('proxy') && !argv.includes('exec') && argv.includes(`127.0.0.1:${port}`)) return Number(p);
  }
  throw new Error(`no fhirguard proxy listens on ${port}`);
}

async function startProxy(dir: string, variant: string, policy: string, confined: boolean): Promise<Proxy> {
  const [listen, admin] = [await freePort(), await freePort()];
  const args = [BIN, 'proxy', '--policy', policy, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--processes', '1', '--log-level', 'warn'];
  const ids = resolveIdentities({}, true);
  let child: ChildProcess;
  if (confined) {
    const state = join(dir, `state-${listen}`);
    child = spawn(
      process.execPath,
      [BIN, 'exec', '--tier', 'proxy', '--policy', policy, '--state-dir', state, '--db', join(state, 'data', 'fhir.db'), '--ro', policy, '--', process.execPath, ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  } else {
    child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], uid: ids.proxy.uid, gid: ids.proxy.gid });
  }
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(variant, () => ready(admin), 120_000, child).catch((err: Error) => {
    throw new Error(`${err.message}\n${stderr.slice(-3000)}`);
  });
  if (confined) {
    // The serve phase, as the agent switches it once /healthz answers.
    child.kill('SIGUSR1');
    await waitFor(`${variant} serve phase`, async () => stderr.includes('fhirguard exec: serve phase'), 30_000, child);
  }
  stopping.push(child);
  const pid = proxyPid(listen);
  // The kernel shares a CPU between sibling cgroups by weight: a plain process would compete
  // from another branch of the tree than the container, and the split would measure the
  // weights, not the proxies. Every proxy gets a cgroup of its own under the front door's.
  if (!confined) joinCpuCgroup(pid, `fhirguard/proxy/bench-${listen}`);
  return { variant, url: `http://127.0.0.1:${listen}/fhir/Patient/bench-1`, pid };
}

/** Moves a process into a CPU cgroup of its own at `rel` (v1 cpu controller where mounted, else v2). */
function joinCpuCgroup(pid: number, rel: string): void {
  const base = existsSync('/sys/fs/cgroup/cpu/cgroup.procs') ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
  const dir = join(base, rel);
  mkdirSync(dir, { recursive: true });
  cgroups.push(dir);
  writeFileSync(join(dir, 'cgroup.procs'), String(pid));
}

const cgroups: string[] = [];

const stopping: ChildProcess[] = [];

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:front-door needs root: the confined proxy runs in a container');
  if (!wrkInstalled()) throw new Error('wrk is not installed (Debian package wrk; scripts/install.sh installs it)');
  const seconds = 5;
  const rounds = 6;
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-door-'));
  chmodSync(dir, 0o711);
  const wrk = wrkRunner(dir);
  const started = new Date();
  const loadStart = load();
  try {
    const upChild = spawnLogged('upstream', process.execPath, [join(__dirname, 'proxy.js'), 'upstream'], { cwd: ROOT });
    const upPort = await firstLine(upChild, 'upstream', (l) => (l.startsWith('{"port"') ? (JSON.parse(l) as { port: number }).port : undefined));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      ['tiers:', '  - name: read', `    upstreams: ["http://127.0.0.1:${upPort}"]`, 'rules:', '  - resources: ["*"]', '    interactions: [read, capabilities]', '    tier: read', ''].join('\n'),
    );
    chmodSync(policy, 0o644);
    const unconfined = await startProxy(dir, 'unconfined', policy, false);
    const confined = await startProxy(dir, 'confined', policy, true);
    const twin = await startProxy(dir, 'unconfined (twin)', policy, false);

    // One after the other: CPU per read of each proxy process.
    const cpu = new Map<string, number[]>([unconfined, confined].map((p) => [p.variant, []]));
    const rps = new Map<string, number[]>([unconfined, confined].map((p) => [p.variant, []]));
    for (const p of [unconfined, confined]) await wrk(p.url, 32, 10);
    for (let round = 1; round <= rounds; round++) {
      for (const p of round % 2 ? [unconfined, confined] : [confined, unconfined]) {
        const before = cpuSeconds(p.pid);
        const r = await wrk(p.url, 32, seconds);
        if (r.errors) throw new Error(`${p.variant}: ${r.errors} failed requests`);
        cpu.get(p.variant)!.push(((cpuSeconds(p.pid) - before) * 1e6) / r.requests);
        rps.get(p.variant)!.push(r.rps);
        process.stderr.write(`  round ${round} ${p.variant.padEnd(12)} ${r.rps.toFixed(0).padStart(7)} req/s  ${cpu.get(p.variant)!.at(-1)!.toFixed(0)} µs CPU/read\n`);
      }
    }
    const seq = Object.fromEntries([...cpu.keys()].map((v) => [v, { rps: stats(rps.get(v)!), cpuUsPerRead: stats(cpu.get(v)!) }])) as Record<string, { rps: Stats; cpuUsPerRead: Stats }>;

    // Head-to-head on one shared CPU, and the control.
    const { plan, why } = sharedCpuPlan();
    let h2h: { confined: HeadToHead; control: HeadToHead } | null = null;
    if (plan) {
      const pinnedWrk = wrkRunner(dir, plan.rest);
      pinPid(upChild.pid!, plan.rest);
      const o = { rounds, seconds, warmup: 10, connections: 32, sharedCpu: plan.shared, allCpus: plan.all };
      const log = (l: string) => process.stderr.write(l + '\n');
      h2h = { confined: await headToHead(unconfined, confined, o, pinnedWrk, log), control: await headToHead(unconfined, twin, o, pinnedWrk, log) };
    }
    const m = machineInfo(loadStart);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const u = seq.unconfined;
    const c = seq.confined;
    process.stdout.write(`\nfhirguard front door confinement benchmark, ${started.toISOString()}\nmachine: ${describeMachine(m)}\n`);
    process.stdout.write(`one after the other, ${rounds} rounds x ${seconds} s, 32 connections (medians, min-max):\n`);
    for (const [v, s] of [
      ['unconfined', u],
      ['confined', c],
    ] as const) {
      process.stdout.write(
        `  ${v.padEnd(11)} ${s.rps.median.toFixed(0)} req/s (${s.rps.min.toFixed(0)}-${s.rps.max.toFixed(0)})  ${s.cpuUsPerRead.median.toFixed(1)} µs CPU/read (${s.cpuUsPerRead.min.toFixed(1)}-${s.cpuUsPerRead.max.toFixed(1)})\n`,
      );
    }
    process.stdout.write(`  confined/unconfined: ${pct(c.rps.median / u.rps.median)} of the reads, CPU per read ${(c.cpuUsPerRead.median - u.cpuUsPerRead.median).toFixed(1)} µs more\n`);
    if (h2h) {
      const r = (h: HeadToHead) =>
        h.ratio
          ? `${pct(h.ratio.median)} (${pct(h.ratio.min)}-${pct(h.ratio.max)}), ${h.rounds.filter((x) => x.counted).length} of ${h.rounds.length} rounds counted`
          : 'no figure (too few saturated rounds)';
      process.stdout.write(`head-to-head on CPU ${plan!.shared}: confined vs unconfined ${r(h2h.confined)}; control, twin vs unconfined ${r(h2h.control)}\n`);
      if (h2h.confined.ratio) process.stdout.write(`target confined ≥ ${pct(TARGET)} of unconfined: ${h2h.confined.ratio.median >= TARGET ? 'met' : 'NOT met'}\n`);
    } else process.stdout.write(`head-to-head: NOT measured (${why})\n`);
    const out = join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `front-door-${started.toISOString().slice(0, 10)}.json`);
    writeFileSync(file, JSON.stringify({ benchmark: 'front-door', date: started.toISOString(), machine: m, target: TARGET, sequential: seq, headToHead: h2h ?? { notMeasured: why } }, null, 2) + '\n');
    process.stdout.write(`results: ${file}\n`);
  } finally {
    for (const c of stopping) c.kill('SIGTERM');
    await stopAll();
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of cgroups) {
      try {
        rmdirSync(c);
      } catch {
        // still holds a process that outlived its stop
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (err) => {
  process.stderr.write(`bench:front-door failed: ${(err as Error).stack ?? err}\n`);
  for (const c of stopping) c.kill('SIGTERM');
  await stopAll();
  process.exit(1);
});
