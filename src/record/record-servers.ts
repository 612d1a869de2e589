// `fhirguard record --server`: records the profiles of the tiers an operator's own server
// serves (policy `server:`), the way the agent will run it. A real agent starts each such
// tier's server in its container, as its tier's identity, under a seccomp filter that
// allows and logs (the template's refusals kept: clone3's ENOSYS) and the eBPF recorder; a
// real proxy follows the agent. Through it go the data set-up and every candidate step of the
// default workloads, clients that hang up, and, when asked, a restart of the server's
// database under it (--restart-db), after which the same reads go on. Then the agent stops
// the servers as it does (shutdown phase, SIGTERM). Boot (the whole start of a JVM: class
// loading, JIT and GC threads, the connection pool), serve and shutdown are kept apart. The
// proof replays the held-out half with the new profiles enforced: no violation, no restart,
// else nothing is written.

import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent';
import { serveApi } from '../agent/api';
import type { CgroupCounters, RecordedSets } from '../enforce/bpf';
import { ebpfProfilePath } from '../enforce/ebpf-profile';
import type { Identities } from '../enforce/identities';
import { defaultDbPath } from '../enforce/layout';
import { seccompProfilePath } from '../enforce/seccomp';
import { loadTierProfiles } from '../enforce/tier-profiles';
import type { Policy } from '../policy';
import { runProxy } from '../proxy/run';
import { loadDataset, type Dataset } from './corpus';
import { candidateSteps, setupSteps } from './default-workloads';
import { drive, type DriveResult, type Target } from './drive';
import { freePort } from './ports';
import { ebpfFromRecording, ebpfJson, seccompFromRecording, seccompJson } from './profile-writer';
import { SERVER_RUNTIME } from './variation';
import type { Step } from './workload';

export interface RecordServersOptions {
  policy: Policy;
  /** The templates recording starts from: <dir>/seccomp/<tier>.json, <dir>/ebpf/<tier>.json. */
  templateDir: string;
  outDir: string;
  install: string;
  identities: Identities;
  corpusDir: string;
  patients?: number;
  runcPath?: string;
  /** A shell command that restarts the servers' database, run mid-workload. */
  restartDb?: string;
  prove: boolean;
  log: Logger;
  progress: (line: string) => void;
}

export interface ServerRun {
  mode: 'record' | 'enforce';
  workload: string;
  requests: number;
  statuses: Record<string, number>;
  /** Restarts of each tier's workers during the run. */
  restarts: Record<string, number>;
  /** eBPF violations by tier and syscall (enforce: none for complete profiles). */
  violations: Record<string, Record<string, number>>;
  /** Requests answered 5xx after the database restart, before the servers were back. */
  afterDbRestart?: { requests: number; failed: number; recoveredMs: number };
  sets: Record<string, RecordedSets | null>;
}

export interface ServerTierResult {
  tier: string;
  seccompAllowed: number;
  outsideTemplate: string[];
  serve: string[];
  written: boolean;
}

export interface ServersRecordReport {
  command: string;
  recording: ServerRun;
  proof: ServerRun | null;
  tiers: ServerTierResult[];
}

function sh(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: 120_000 }, (err, _out, stderr) => (err ? reject(new Error(`${command}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

function ask(address: string, p: string): Promise<number> {
  return new Promise((resolve) => {
    const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
    const req = http.get({ host, port, path: p, timeout: 5000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', () => resolve(0));
    req.once('timeout', () => req.destroy());
  });
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return Date.now() - t0;
}

function merge(into: DriveResult, more: DriveResult): void {
  into.requests += more.requests;
  for (const [k, v] of Object.entries(more.statuses)) into.statuses[k] = (into.statuses[k] ?? 0) + v;
}

/** Clients that leave once their answer has started. */
async function hangUps(target: Target, paths: string[]): Promise<void> {
  for (const p of paths) {
    await new Promise<void>((resolve) => {
      const req = http.get(`${target.origin}${target.base}${p}`, { agent: false, headers: { accept: 'application/fhir+json' } }, (res) => {
        res.once('data', () => req.destroy());
        res.once('close', resolve);
      });
      req.once('error', () => resolve());
    });
  }
}

export function serverTiers(policy: Policy): string[] {
  return policy.tiers.filter((t) => t.server).map((t) => t.name);
}

export async function recordServers(o: RecordServersOptions, command: string): Promise<ServersRecordReport> {
  const tiers = serverTiers(o.policy);
  if (tiers.length === 0) throw new Error(`${o.policy.file} has no tier with a server: block`);
  const root = mkdtempSync(path.join(tmpdir(), 'fhirguard-record-server-'));
  chmodSync(root, 0o711);
  const staged = path.join(root, 'profiles');
  try {
    const run = async (mode: 'record' | 'enforce', profilesDir: string, data: Dataset): Promise<ServerRun> => {
      const stateDir = path.join(root, `state-${mode}`);
      mkdirSync(stateDir, { mode: 0o711 });
      const socketPath = path.join(stateDir, 'agent.sock');
      const last = new Map<string, CgroupCounters[]>();
      const agent = new Agent({
        policy: o.policy,
        profilesDir,
        stateDir,
        db: defaultDbPath(stateDir),
        install: o.install,
        identities: o.identities,
        log: o.log,
        workerLogLevel: 'warn',
        runcPath: o.runcPath,
        ...(mode === 'record' ? { recordTiers: tiers } : {}),
        onRetired: (tier, c) => last.set(tier, [...(last.get(tier) ?? []), c]),
      });
      let api: { close(): Promise<void> } | undefined;
      let proxy: { close(): Promise<void> } | undefined;
      try {
        await agent.start();
        if (agent.enforcementStatus.containers.ok !== true || !agent.enforcementStatus.ebpf.ok) {
          throw new Error(`recording a server needs containers and the eBPF recorder: ${agent.enforcementStatus.containers.reason ?? agent.enforcementStatus.ebpf.reason}`);
        }
        api = await serveApi(agent, { socketPath, log: o.log });
        const admin = `127.0.0.1:${await freePort()}`;
        const running = await runProxy(
          { policy: o.policy.file, agent: socketPath, listen: `127.0.0.1:${await freePort()}`, admin, base: '/fhir', 'body-limit': String(64 * 1024 * 1024), 'max-depth': '64' },
          o.log,
        );
        if (typeof running === 'number') throw new Error(`the proxy did not start (status ${running})`);
        proxy = running;
        o.progress(`${mode}: waiting for the servers (${tiers.join(', ')}) to serve`);
        await until('every tier serving', 600_000, async () => (await ask(admin, '/readyz')) === 200);
        const url = new URL(running.fhirUrl);
        const target: Target = { origin: url.origin, base: url.pathname.replace(/\/$/, '') };
        o.progress(`${mode}: ${data.half} half through the proxy`);
        const result = await drive(target, setupSteps(data));
        merge(result, await drive(target, candidateSteps(data)));
        const reads = candidateSteps(data).filter((s: Step) => s.method === 'GET');
        merge(result, await drive(target, reads, { concurrency: 8 }));
        await hangUps(target, ['/metadata', '/Patient?_count=50']);
        let afterDbRestart: ServerRun['afterDbRestart'];
        if (o.restartDb) {
          o.progress(`${mode}: restarting the database (${o.restartDb})`);
          // Requests go on while the database is down and coming back: the servers' pools
          // meet dead connections and open new ones, as in production.
          const again = reads.slice(0, 5).map((s) => ({ ...s, expect: [...s.expect, 500, 502, 503, 504] }));
          let restarted = false;
          const restart = sh(o.restartDb).finally(() => (restarted = true));
          const during = await drive(target, again);
          while (!restarted) merge(during, await drive(target, again));
          await restart;
          const failed = Object.entries(during.statuses).reduce((n, [k, v]) => (Number(k) >= 500 ? n + v : n), 0);
          const recoveredMs = await until('the servers answering after the database restart', 120_000, async () => {
            const r = await drive(target, reads.slice(0, 3));
            return r.failures.length === 0;
          });
          merge(result, during);
          merge(result, await drive(target, reads, { concurrency: 4 }));
          afterDbRestart = { requests: during.requests, failed, recoveredMs };
        }
        // Quiet time: the pool's housekeeping and idle timers run on their own.
        await new Promise((r) => setTimeout(r, 10_000));
        const restarts = Object.fromEntries(
          tiers.map((t) => [
            t,
            agent
              .workers()
              .filter((w) => w.tier === t)
              .reduce((n, w) => n + w.restarts, 0),
          ]),
        );
        await proxy.close();
        proxy = undefined;
        await agent.stop();
        const violations: ServerRun['violations'] = {};
        const sets: ServerRun['sets'] = {};
        for (const t of tiers) {
          const runs = last.get(t) ?? [];
          const v: Record<string, number> = {};
          for (const c of runs) for (const [n, s] of Object.entries(c.syscalls)) if (s.violations > 0) v[n] = (v[n] ?? 0) + s.violations;
          violations[t] = v;
          sets[t] = unionSets(runs.map((c) => c.recorded));
        }
        return { mode, workload: `synthea ${data.half} half`, requests: result.requests, statuses: result.statuses, restarts, violations, ...(afterDbRestart ? { afterDbRestart } : {}), sets };
      } finally {
        await proxy?.close().catch(() => undefined);
        await api?.close().catch(() => undefined);
        await agent.stop().catch(() => undefined);
      }
    };

    const recording = await run('record', o.templateDir, loadDataset(o.corpusDir, 'recording', { patientsPerHalf: o.patients }));
    const results: ServerTierResult[] = [];
    for (const t of tiers) {
      const s = recording.sets[t];
      if (!s) throw new Error(`the recorder returned no sets for tier ${t}`);
      const template = loadTierProfiles(o.templateDir, t, o.policy.tierByName.get(t)!.readOnly);
      const provenance = `from the tier's server in its container (boot after runc installed the filter: the whole JVM start; serve; shutdown), ${recording.workload}: the data set-up and every candidate step of the default workloads the policy routes there${o.restartDb ? ', a restart of its database under it' : ''}, clients that hang up. Kept whether recorded or not: the runtime's calls on its own timing (GC, threads, CPU and memory sizing), where the template allows them.`;
      const kept = [...SERVER_RUNTIME].filter((n) => template.seccompAllowed.includes(n));
      const seccomp = seccompFromRecording(template.seccomp, [...s.bootSeccomp, ...s.serve, ...s.shutdown, ...kept], provenance);
      const ebpf = ebpfFromRecording(template.ebpf, [...s.serve, ...kept.filter((n) => template.ebpf.serve.includes(n) || s.serve.includes(n))], provenance);
      mkdirSync(path.join(staged, 'seccomp'), { recursive: true });
      mkdirSync(path.join(staged, 'ebpf'), { recursive: true });
      writeFileSync(seccompProfilePath(staged, t), seccompJson(seccomp.profile));
      writeFileSync(ebpfProfilePath(staged, t), ebpfJson(ebpf));
      results.push({
        tier: t,
        seccompAllowed: seccomp.profile.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names).length,
        outsideTemplate: seccomp.outsideTemplate,
        serve: ebpf.serve,
        written: false,
      });
    }
    const proof = o.prove ? await run('enforce', staged, loadDataset(o.corpusDir, 'holdout', { patientsPerHalf: o.patients })) : null;
    for (const r of results) {
      const passed = !proof || (Object.keys(proof.violations[r.tier] ?? {}).length === 0 && (proof.restarts[r.tier] ?? 0) === 0);
      if (!passed) continue;
      for (const sub of ['seccomp', 'ebpf']) mkdirSync(path.join(o.outDir, sub), { recursive: true });
      writeFileSync(seccompProfilePath(o.outDir, r.tier), seccompJson(loadTierProfiles(staged, r.tier, true).seccomp));
      writeFileSync(ebpfProfilePath(o.outDir, r.tier), ebpfJson(loadTierProfiles(staged, r.tier, true).ebpf));
      r.written = true;
    }
    return { command, recording, proof, tiers: results };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Several runs of one tier (restarts), as one: a call in any run is in the union. */
function unionSets(list: Array<RecordedSets | null>): RecordedSets | null {
  const present = list.filter((s): s is RecordedSets => s !== null);
  if (present.length === 0) return null;
  const out = {} as RecordedSets;
  for (const k of Object.keys(present[0]) as Array<keyof RecordedSets>) out[k] = [...new Set(present.flatMap((s) => s[k]))].sort();
  return out;
}

export function serversReportMarkdown(r: ServersRecordReport): string {
  const run = (x: ServerRun): string[] => [
    `- ${x.mode}, ${x.workload}: ${x.requests} requests (${Object.entries(x.statuses)
      .sort()
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')})`,
    ...Object.keys(x.restarts).map((t) => `  - tier ${t}: ${x.restarts[t]} restarts, violations: ${Object.keys(x.violations[t] ?? {}).length ? JSON.stringify(x.violations[t]) : 'none'}`),
    ...(x.afterDbRestart
      ? [
          `  - database restarted: ${x.afterDbRestart.failed} of ${x.afterDbRestart.requests} requests right after it answered 5xx; all answered again after ${(x.afterDbRestart.recoveredMs / 1000).toFixed(1)} s`,
        ]
      : []),
  ];
  return [
    `# Server tier profiles`,
    '',
    `Recorded by \`${r.command}\`.`,
    '',
    ...run(r.recording),
    ...(r.proof ? run(r.proof) : ['- not proved (no --prove)']),
    '',
    ...r.tiers.flatMap((t) => [
      `## ${t.tier}`,
      '',
      `seccomp: ${t.seccompAllowed} calls allowed; used outside the template: ${t.outsideTemplate.join(', ') || 'none'}.`,
      '',
      `eBPF serve set (${t.serve.length}): ${t.serve.join(', ')}.`,
      '',
      t.written ? 'Written.' : 'NOT written: the proof failed.',
      '',
    ]),
  ].join('\n');
}
