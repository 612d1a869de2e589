// One run of one tier: a fresh database loaded with the workload's set-up (by a plain
// writing worker, outside the recording), the tier's worker in its container under the
// given seccomp filter and eBPF policy, plain workers for the other tiers, the real proxy
// in front, the workload driven through the proxy, a writer's crash mid-commit that the
// tier's worker must get through (writer-crash.ts), then the worker stopped the way the agent
// stops it (shutdown phase, SIGTERM). Recording and the proof of completeness are both such
// runs; they differ in the filter and policy the worker gets.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Client } from 'undici';
import { checkHealth } from '../agent/health';
import type { BpfPolicy, CgroupCounters } from '../enforce/bpf';
import type { EnforcementContext } from '../enforce/launch';
import type { OciSeccomp } from '../enforce/seccomp';
import type { Policy } from '../policy';
import { PlainWorker, policyWithUpstreams, startProxy, socketDirFor } from './backends';
import { ConfinedWorker, stopAllConfined } from './confined-worker';
import { drive, type DriveResult, type Target } from './drive';
import type { Step, Workload } from './workload';
import { journalOf, leaveCrashedCommit } from './writer-crash';

/** Set-up results kept for the runs of one `fhirguard record`: the database after a set-up,
 * by the set-up's content. A set-up is deterministic (fixed ids, fixed order), so a copy of
 * its database is the database it would make again. */
export class SetupCache {
  private readonly entries = new Map<string, { db: string; result: DriveResult }>();

  constructor(private readonly dir: string) {}

  private key(setup: readonly Step[]): string {
    return createHash('sha256').update(JSON.stringify(setup)).digest('hex');
  }

  get(setup: readonly Step[]): { db: string; result: DriveResult } | undefined {
    return this.entries.get(this.key(setup));
  }

  async put(setup: readonly Step[], db: string, result: DriveResult): Promise<void> {
    const key = this.key(setup);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const copy = path.join(this.dir, `${key.slice(0, 16)}.db`);
    await copyFile(db, copy);
    this.entries.set(key, { db: copy, result });
  }
}

export interface TierRunOptions {
  ctx: EnforcementContext;
  policy: Policy;
  tier: string;
  workload: Workload;
  seccomp: OciSeccomp;
  bpf: BpfPolicy;
  /** Worker log level, as the agent gives it (it decides how much the worker writes). */
  workerLogLevel: string;
  log: Logger;
  /** Parent of the run's temporary directory (default the OS temp dir). */
  tmp?: string;
  /** Steps in flight at once (default 4). */
  concurrency?: number;
  /** Quiet time after the workload, longer than the keep-alive timeouts (default 6 s). */
  idleMs?: number;
  /** Databases already set up, by set-up: a run whose set-up is there copies it instead. */
  setupCache?: SetupCache;
  onProgress?: (what: string) => void;
}

export interface TierRunResult {
  setup: DriveResult;
  workload: DriveResult;
  /** The other tiers' traffic meanwhile (answers counted, not checked). */
  background: { requests: number; statuses: Record<string, number>; failures: number };
  /** The worker's exit after SIGTERM (0 when it stopped cleanly) and its host pid. */
  exit: { code: number; signal: NodeJS.Signals | null; pid: number };
  counters: CgroupCounters;
  /** Milliseconds per part of the run. */
  timing: { setupMs: number; bootMs: number; workloadMs: number; shutdownMs: number; totalMs: number };
  /** The worker's last log lines, kept when something went wrong. */
  workerLog: string;
}

const DEFAULT_CONCURRENCY = 4;
/** node's HTTP server closes idle keep-alive connections after 5 s, undici's pool after 4 s. */
const IDLE_MS = 6000;
/** The agent checks a serving worker every 5 s; a tighter rhythm here, same request. */
const HEALTH_INTERVAL_MS = 1000;
const HANG_UPS = 3;
const AFTER_IDLE_STEPS = 20;
/** Steps sent after a writer's crash, before and after the journal is rolled back. */
const AFTER_CRASH_STEPS = 8;

/** A failure of the crash part itself (not of a step): reported like a failed step. */
function crashFailure(label: string, detail: string): DriveResult['failures'][number] {
  return { label, method: '-', path: '-', expected: [], status: 0, detail };
}

interface AfterCrashOptions {
  target: Target;
  steps: readonly Step[];
  readOnly: boolean;
  db: string;
  identity: EnforcementContext['identities']['writer'];
  /** The install the workers run from (the crashing writer loads its SQLite from there). */
  install: string;
  /** Starts a plain writer on the database and drives `steps` to it (a read-only tier cannot roll back). */
  recover: (steps: Step[]) => Promise<DriveResult>;
}

/**
 * A writer dies mid-commit (writer-crash.ts), then the tier's workload goes on: a read-only
 * tier answers 503 while the journal is hot, until a writer has rolled it back; a writing tier
 * rolls it back itself at its next transaction. Then every step answers as before.
 */
async function afterWriterCrash(o: AfterCrashOptions): Promise<DriveResult> {
  const steps = o.steps.filter((s) => !s.once).slice(0, AFTER_CRASH_STEPS);
  await leaveCrashedCommit(o.db, o.identity, o.install);
  const result: DriveResult = { requests: 0, steps: 0, failures: [], pagesRefused: [], statuses: {}, ms: 0 };
  if (o.readOnly) {
    const during = await drive(
      o.target,
      steps.map((s) => ({ ...s, expect: [...s.expect, 503], label: `${s.label}, a crashed commit not rolled back yet` })),
    );
    merge(result, during);
    if (!during.statuses['503']) result.failures.push(crashFailure('after a crashed commit', 'no request met the hot journal (none answered 503)'));
    const recovery: Step = {
      method: 'POST',
      path: '/Basic',
      body: { resourceType: 'Basic', code: { text: 'fhirguard record: a write after a crashed commit' } },
      expect: [201],
      label: 'a writer rolls the crashed commit back',
    };
    merge(result, await o.recover([recovery]));
  }
  merge(
    result,
    await drive(
      o.target,
      steps.map((s) => ({ ...s, label: `${s.label}, after a crashed commit` })),
    ),
  );
  if (existsSync(journalOf(o.db))) result.failures.push(crashFailure('after a crashed commit', 'the journal is still there: nobody rolled the commit back'));
  return result;
}

function merge(into: DriveResult, more: DriveResult): void {
  into.requests += more.requests;
  into.steps += more.steps;
  into.failures.push(...more.failures);
  into.pagesRefused.push(...more.pagesRefused);
  for (const [k, v] of Object.entries(more.statuses)) into.statuses[k] = (into.statuses[k] ?? 0) + v;
  into.ms += more.ms;
}

/** Clients that go away once the answer has started: the proxy drops its upstream request
 * and the worker meets a closed connection mid-answer. */
async function hangUps(target: Target, steps: readonly Step[]): Promise<void> {
  for (const s of steps) {
    const client = new Client(target.origin);
    try {
      const res = await client.request({ path: `${target.base}${s.path}`, method: 'GET', headers: { accept: 'application/fhir+json' } });
      res.body.on('error', () => undefined);
      res.body.destroy();
    } catch {
      // the hang-up is the point; any error of ours is fine
    } finally {
      await client.destroy().catch(() => undefined);
    }
  }
}

function readyz(adminAddress: string): Promise<boolean> {
  const [host, port] = [adminAddress.slice(0, adminAddress.lastIndexOf(':')).replace(/^\[|\]$/g, ''), Number(adminAddress.slice(adminAddress.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/readyz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
  });
}

async function waitReady(adminAddress: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  while (Date.now() < deadline) {
    if (await readyz(adminAddress)) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }
  throw new Error(`the proxy did not see a healthy worker for every tier within ${timeoutMs} ms`);
}

/** Stops every container and plain worker runs have started and not stopped yet (SIGINT). */
export async function stopEverything(): Promise<void> {
  await Promise.all([stopAllConfined(), ...[...PlainWorker.live].map((w) => w.stop().catch(() => undefined))]);
}

export async function runTier(o: TierRunOptions): Promise<TierRunResult> {
  const t0 = performance.now();
  const { ctx } = o;
  // The recording's short-lived world runs every worker as one identity: it owns the database.
  const identity = ctx.identities.writer;
  const tierConfig = o.policy.tierByName.get(o.tier);
  if (!tierConfig) throw new Error(`no tier '${o.tier}' in ${o.policy.file}`);
  const dir = await mkdtemp(path.join(o.tmp ?? tmpdir(), `fhirguard-record-${o.tier}-`));
  // The plain workers run as the worker identity and must reach their sockets and the
  // database under this directory (containers mount them and skip the parents).
  await chmod(dir, 0o711);
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir, { mode: 0o750 });
  await chown(dataDir, identity.uid, identity.gid);
  const db = path.join(dataDir, 'fhirguard.db');
  const sock = (name: string): string => path.join(dir, 'run', name, 'worker.sock');
  await mkdir(path.join(dir, 'run'), { mode: 0o711 });

  const helpers: PlainWorker[] = [];
  let recorded: ConfinedWorker | undefined;
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  try {
    // 1. Set-up, outside the recording (or a copy of the same set-up made earlier).
    o.onProgress?.('set-up');
    const cached = o.setupCache?.get(o.workload.setup);
    let setup: DriveResult;
    if (cached) {
      await copyFile(cached.db, db);
      await chown(db, identity.uid, identity.gid);
      setup = cached.result;
    } else {
      const writer = await PlainWorker.start(ctx.install, { tier: 'setup', db, socketPath: sock('setup'), readOnly: false, logLevel: 'warn' }, identity);
      setup = await drive({ origin: 'http://localhost', socketPath: sock('setup'), base: '' }, o.workload.setup);
      await writer.stop();
      if (setup.failures.length) {
        const f = setup.failures[0];
        throw new Error(`set-up failed (${setup.failures.length} steps): ${f.label}: ${f.status} ${f.detail.slice(0, 300)}`);
      }
      await o.setupCache?.put(o.workload.setup, db, setup);
    }
    const t1 = performance.now();

    // 2. The tier's worker in its container, and plain workers for the other tiers.
    o.onProgress?.('boot');
    const id = `rec-${o.tier}-${randomBytes(4).toString('hex')}`;
    const recordedSock = sock(o.tier);
    await socketDirFor(path.dirname(recordedSock), identity);
    const others = o.policy.tiers.filter((t) => t.name !== o.tier);
    const [w, ...plain] = await Promise.all([
      ConfinedWorker.start(ctx, {
        tier: o.tier,
        readOnly: tierConfig.readOnly,
        id,
        db,
        socketPath: recordedSock,
        seccomp: o.seccomp,
        bpf: o.bpf,
        logLevel: o.workerLogLevel,
      }),
      ...others.map((t) => PlainWorker.start(ctx.install, { tier: t.name, db, socketPath: sock(t.name), readOnly: t.readOnly, logLevel: 'warn' }, identity)),
    ]);
    recorded = w;
    helpers.push(...plain);
    // The agent switches a worker to serve once GET /metadata answers (ConfinedWorker.start waited for it).
    await w.setPhase('serve');
    const t2 = performance.now();

    // 3. The workload, through the real proxy, on several connections, with the other tiers'
    // traffic going on and the agent's health checks; then a pause long enough for idle
    // keep-alive connections to be closed (by the proxy's pool and by the worker), clients
    // that hang up before reading their answers, and traffic again on fresh connections.
    o.onProgress?.('workload');
    const sockets = new Map(o.policy.tiers.map((t) => [t.name, sock(t.name)]));
    const policyFile = path.join(dir, 'policy.yaml');
    policyWithUpstreams(o.policy.file, sockets, policyFile);
    proxy = await startProxy(policyFile, o.log);
    await waitReady(proxy.adminAddress, 60_000);
    const base = new URL(proxy.fhirUrl);
    const target = { origin: base.origin, base: base.pathname.replace(/\/$/, '') };
    const health = setInterval(() => void checkHealth(recordedSock), HEALTH_INTERVAL_MS);
    let workload: DriveResult;
    let background: DriveResult;
    try {
      const stopBackground = new AbortController();
      const bg = drive(target, o.workload.background ?? [], { loop: true, signal: stopBackground.signal });
      try {
        workload = await drive(target, o.workload.steps, { concurrency: o.concurrency ?? DEFAULT_CONCURRENCY });
      } finally {
        stopBackground.abort();
        background = await bg;
      }
      o.onProgress?.('idle');
      await new Promise((r) => setTimeout(r, o.idleMs ?? IDLE_MS));
      await hangUps(target, o.workload.steps.filter((s) => s.method === 'GET').slice(0, HANG_UPS));
      const again = await drive(target, o.workload.steps.filter((s) => !s.once).slice(0, AFTER_IDLE_STEPS));
      merge(workload, again);
      o.onProgress?.('writer crash');
      const recover = async (steps: Step[]): Promise<DriveResult> => {
        const writer = await PlainWorker.start(ctx.install, { tier: 'recovery', db, socketPath: sock('recovery'), readOnly: false, logLevel: 'warn' }, identity);
        try {
          return await drive({ origin: 'http://localhost', socketPath: sock('recovery'), base: '' }, steps);
        } finally {
          await writer.stop();
        }
      };
      merge(workload, await afterWriterCrash({ target, steps: o.workload.steps, readOnly: tierConfig.readOnly, db, identity, install: ctx.install, recover }));
    } finally {
      clearInterval(health);
    }
    const t3 = performance.now();

    // 4. Shutdown as the agent does it: shutdown phase, SIGTERM; the proxy still holds its
    // connections to the worker, as it does when the agent stops or restarts a worker.
    o.onProgress?.('shutdown');
    const stopped = await recorded.stop();
    const workerLog = recorded.log;
    recorded = undefined;
    const t4 = performance.now();
    return {
      setup,
      workload,
      background: { requests: background.requests, statuses: background.statuses, failures: background.failures.length },
      exit: { code: stopped.code, signal: stopped.signal, pid: stopped.pid },
      counters: stopped.counters,
      timing: {
        setupMs: Math.round(t1 - t0),
        bootMs: Math.round(t2 - t1),
        workloadMs: Math.round(t3 - t2),
        shutdownMs: Math.round(t4 - t3),
        totalMs: Math.round(t4 - t0),
      },
      workerLog,
    };
  } finally {
    await recorded?.stop(0).catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    await Promise.all(helpers.map((h) => h.stop().catch(() => undefined)));
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
