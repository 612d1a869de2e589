// A rolling update of one tier, run by the agent (`fhirguard rollout` asks for it over the
// control socket):
//
//   start   new workers from the new artifacts, through the tier's usual start path (image
//           gate, signature check, container, eBPF boot policy), next to the old ones
//   ready   every new worker answered GET /metadata and is under its serve-phase policy;
//           the agent says 'serving', and the proxy adds it to the tier's pool
//   bake    old and new share the traffic for the bake time; a new worker that crashes,
//           is refused, or makes a syscall or connection its profile does not allow fails
//           the rollout
//   drain   the old workers are said 'draining': the proxy takes them out of its pool for new
//           requests and closes their connections once the requests in flight finished;
//           the agent waits until a worker has no connection left, then stops it (SIGTERM,
//           where the worker finishes anything still running)
//
// A failure before the drain rolls back: the new workers are drained and stopped the same
// way and the old ones, never touched, keep serving. Nothing here sends a request twice: the
// proxy sends a write to another member only when it could not connect to the first (it was
// never sent), and no worker is stopped while it holds a connection.

import { constants } from 'node:os';
import type { Logger } from 'pino';
import type { CgroupCounters } from '../enforce/bpf';
import { acceptedConnections } from './connections';
import { checkHealth } from './health';
import type { WorkerSupervisor } from './supervisor';
import type { WorkerInfo } from '../agent-api/messages';

export interface RolloutRequest {
  tier: string;
  /** A new profiles directory (seccomp/<tier>.json, ebpf/<tier>.json). */
  profilesDir?: string;
  /** A new worker image reference. */
  image?: string;
  /** Advisory database for a new image (default: the current image's). */
  advisories?: string;
  /** Signed statements for the new artifacts (default: <profilesDir>/attestations). */
  attestations?: string;
  /** How long old and new workers serve side by side before the old ones go. */
  bakeMs?: number;
  /** How long the new workers may take to serve. */
  readyTimeoutMs?: number;
  /** How long a draining worker may keep connections before it is stopped anyway. */
  drainTimeoutMs?: number;
}

export type RolloutStep = 'prepare' | 'start' | 'ready' | 'bake' | 'drain' | 'rollback' | 'done';

export interface RolloutProgress {
  type: 'progress';
  step: RolloutStep;
  message: string;
  at: string;
}

export interface RolloutResult {
  type: 'result';
  ok: boolean;
  tier: string;
  /** Why it failed (and was rolled back). */
  reason?: string;
  /** The tier's workers afterwards. */
  workers: string[];
  /** What the tier runs afterwards. */
  runs: string;
  durationMs: number;
}

/** The new workers of a rollout, created by the agent but not started. */
export interface Generation {
  supervisors: WorkerSupervisor[];
  /** What they run (one line). */
  describe: string;
  /** Counters of their workers that ended (a killed worker's last counters), by worker id. */
  retired: Map<string, CgroupCounters[]>;
  /** Makes these artifacts the tier's: reported on GET /enforcement, used by later rollouts. */
  adopt(): void;
}

/** What a rollout needs from the agent. */
export interface RolloutHost {
  log: Logger;
  /** The tier's current workers. */
  current(tier: string): WorkerSupervisor[];
  /** Builds (without starting) the tier's next workers; throws with the reason when it cannot. */
  prepare(req: RolloutRequest): Promise<Generation>;
  /** Drops stopped workers from the agent's lists. */
  forget(sups: WorkerSupervisor[]): Promise<void>;
  /** The artifacts the tier runs now (one line). */
  describe(tier: string): string;
}

export const ROLLOUT_DEFAULTS = { bakeMs: 10_000, readyTimeoutMs: 120_000, drainTimeoutMs: 30_000 };
/** Old and new serve together at least this long, so every proxy has checked the new ones
 * and added them to its pool before the old ones leave it. */
const MIN_OVERLAP_MS = 2_000;
/** A draining worker is stopped no sooner than this after it was said draining: the time a
 * proxy needs to read the event and stop picking it. */
const DRAIN_SETTLE_MS = 500;
const POLL_MS = 200;
/** Longest wait for a crashed worker's last eBPF counters (read as its container is torn down). */
const RETIRE_WAIT_MS = 5_000;

class RolloutFailure extends Error {}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The profile violations of a worker that has exited, once its supervisor has read its last
 * counters. The crash is said before that (the container is torn down first), and on a
 * loaded host the teardown takes longer than a poll, so this waits for it: the counters
 * arrive, or the supervisor moves on (restarts, stops or refuses the worker) without any.
 */
async function violationsAfterExit(gen: Generation, sup: WorkerSupervisor): Promise<string[]> {
  const id = sup.slot.id;
  const deadline = Date.now() + RETIRE_WAIT_MS;
  const settled = (): boolean => {
    const i = sup.info();
    return gen.retired.has(id) || i.restarts > 0 || i.state === 'stopped' || i.state === 'refused';
  };
  while (!settled() && Date.now() < deadline) await sleep(POLL_MS / 4);
  return violationsOf(gen.retired.get(id) ?? []);
}

function exitText(i: WorkerInfo): string {
  const e = i.lastExit;
  if (!e) return 'no exit status';
  // runc reports a container killed by a signal as 128 + the signal's number.
  const signal = e.signal ?? (e.code && e.code > 128 ? Object.entries(constants.signals).find(([, n]) => n === e.code! - 128)?.[0] : undefined);
  return signal ? `killed by ${signal}` : `exit status ${e.code ?? 'unknown'}`;
}

function violationsOf(list: Array<CgroupCounters | null>): string[] {
  const out = new Map<string, number>();
  let egress = 0;
  for (const c of list) {
    if (!c) continue;
    for (const [name, s] of Object.entries(c.syscalls)) if (s.violations > 0) out.set(name, (out.get(name) ?? 0) + s.violations);
    egress += c.egressDenied;
  }
  const lines = [...out].map(([name, n]) => `${name} ×${n}`);
  if (egress) lines.push(`egress denied ×${egress}`);
  return lines;
}

export async function runRollout(host: RolloutHost, req: RolloutRequest, say: (p: RolloutProgress) => void): Promise<RolloutResult> {
  const started = Date.now();
  const log = host.log.child({ rollout: req.tier });
  const bakeMs = Math.max(req.bakeMs ?? ROLLOUT_DEFAULTS.bakeMs, MIN_OVERLAP_MS);
  const step = (s: RolloutStep, message: string): void => {
    log.info({ step: s }, `rollout of tier ${req.tier}: ${message}`);
    say({ type: 'progress', step: s, message, at: new Date().toISOString() });
  };
  const result = (ok: boolean, reason?: string): RolloutResult => ({
    type: 'result',
    ok,
    tier: req.tier,
    ...(reason ? { reason } : {}),
    workers: host.current(req.tier).map((s) => s.slot.id),
    runs: host.describe(req.tier),
    durationMs: Date.now() - started,
  });

  const old = host.current(req.tier);
  step('prepare', `from ${host.describe(req.tier)}`);
  let gen: Generation;
  try {
    gen = await host.prepare(req);
  } catch (err) {
    const reason = `cannot prepare the new workers: ${(err as Error).message}`;
    log.error(reason);
    return result(false, reason);
  }
  step('start', `${gen.supervisors.map((s) => s.slot.id).join(', ')} from ${gen.describe}; ${old.length} old worker(s) keep serving`);
  gen.supervisors.forEach((s) => s.start());
  try {
    await untilServing(gen, req.readyTimeoutMs ?? ROLLOUT_DEFAULTS.readyTimeoutMs);
    step('ready', 'every new worker serves under its serve-phase policy; the proxy routes to old and new');
    step('bake', `watching the new workers for ${bakeMs} ms`);
    await bake(gen, bakeMs);
  } catch (err) {
    const reason = (err as Error).message;
    step('rollback', `${reason}; stopping the new workers, the old ones keep serving`);
    await retire(gen.supervisors, req.drainTimeoutMs ?? ROLLOUT_DEFAULTS.drainTimeoutMs, log);
    await host.forget(gen.supervisors);
    return result(false, reason);
  }
  gen.adopt();
  step('drain', `${old.map((s) => s.slot.id).join(', ') || 'no old workers'}: out of the proxy's pool, stopped once their connections closed`);
  await retire(old, req.drainTimeoutMs ?? ROLLOUT_DEFAULTS.drainTimeoutMs, log);
  await host.forget(old);
  step('done', `tier ${req.tier} runs ${gen.describe}`);
  return result(true);
}

/** Resolves once every new worker serves; throws when one crashes, is refused, stops or is late. */
async function untilServing(gen: Generation, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = gen.supervisors.map((s) => s.info());
    for (const [k, i] of infos.entries()) {
      if (i.state === 'refused') throw new RolloutFailure(`${i.id} was refused at start: ${i.refusal?.message ?? 'no reason given'}`);
      if (i.state === 'crashed' || i.restarts > 0) {
        const v = await violationsAfterExit(gen, gen.supervisors[k]);
        throw new RolloutFailure(`${i.id} failed to start (${exitText(i)}${v.length ? `; profile violations: ${v.join(', ')}` : ''})`);
      }
      if (i.state === 'stopped') throw new RolloutFailure(`${i.id} stopped before it served (the agent is stopping)`);
    }
    if (infos.every((i) => i.state === 'serving')) return;
    if (Date.now() > deadline) {
      throw new RolloutFailure(`new workers not serving after ${timeoutMs} ms: ${infos.map((i) => `${i.id} ${i.state}`).join(', ')}`);
    }
    await sleep(POLL_MS);
  }
}

/**
 * Watches the new workers for `ms`: any violation counted on their cgroups, any exit, fails.
 * The agent also asks each for GET /metadata every second: a serve phase that cannot even
 * answer that fails here, with or without client traffic (two misses in a row: one slow
 * answer on a loaded host is not a verdict).
 */
async function bake(gen: Generation, ms: number): Promise<void> {
  const until = Date.now() + ms;
  let probeAt = 0;
  const misses = new Map<string, number>();
  while (Date.now() < until) {
    if (Date.now() >= probeAt) {
      probeAt = Date.now() + 1000;
      const probes = await Promise.all(gen.supervisors.map((s) => (s.info().state === 'serving' ? checkHealth(s.slot.socketPath, s.slot.healthTimeoutMs, s.slot.health) : Promise.resolve(true))));
      gen.supervisors.forEach((s, k) => misses.set(s.slot.id, probes[k] ? 0 : (misses.get(s.slot.id) ?? 0) + 1));
      const silent = gen.supervisors.filter((s) => misses.get(s.slot.id)! >= 2);
      // A worker the check killed is reported below, with its violation.
      if (silent.length) await sleep(POLL_MS);
      for (const s of silent) {
        if (s.info().state === 'serving' && s.info().restarts === 0) throw new RolloutFailure(`${s.slot.id} did not answer GET /metadata twice in a row during the bake`);
      }
    }
    for (const s of gen.supervisors) {
      const i = s.info();
      const v = violationsOf([await s.counters(), ...(gen.retired.get(i.id) ?? [])]);
      if (v.length) throw new RolloutFailure(`${i.id} violated its profile during the bake: ${v.join(', ')}`);
      if (i.state !== 'serving' || i.restarts > 0) {
        const late = await violationsAfterExit(gen, s);
        const why = i.state === 'refused' ? `refused: ${i.refusal?.message}` : exitText(i);
        throw new RolloutFailure(`${i.id} stopped serving during the bake (${why}${late.length ? `; profile violations: ${late.join(', ')}` : ''})`);
      }
    }
    await sleep(Math.min(POLL_MS, Math.max(0, until - Date.now())));
  }
}

/**
 * Drains and stops workers: 'draining' first (the proxy stops picking them and closes their
 * connections after the requests in flight), then, once a worker holds no connection (or
 * after the drain timeout), its shutdown: SIGTERM, in-flight requests finish, exit.
 */
export async function retire(sups: WorkerSupervisor[], drainTimeoutMs: number, log: Logger): Promise<void> {
  // Only a worker that served can have anything to finish; the others go at once.
  const served = new Set(sups.filter((s) => s.info().state === 'serving'));
  sups.forEach((s) => s.drain());
  await sleep(DRAIN_SETTLE_MS);
  await Promise.all(
    sups.map(async (s) => {
      if (!served.has(s)) return s.stop(0);
      const deadline = Date.now() + drainTimeoutMs;
      for (;;) {
        const pid = s.current?.pid;
        if (!pid) break;
        let open: number;
        try {
          open = await acceptedConnections(pid);
        } catch (err) {
          log.warn({ worker: s.slot.id, err }, 'cannot see the worker’s connections; stopping it after the settle time');
          break;
        }
        if (open === 0) break;
        if (Date.now() > deadline) {
          log.warn({ worker: s.slot.id, open }, `still ${open} connection(s) after ${drainTimeoutMs} ms of draining; stopping it anyway`);
          break;
        }
        await sleep(POLL_MS);
      }
      await s.stop();
    }),
  );
}
