// Keeps one worker slot running: start, wait for health, switch to the serve phase, watch,
// and restart after a crash or a kill with exponential backoff (reset once a worker has
// served for a while). Every state change is emitted at once, so the proxy stops routing
// to a dead worker without waiting for a health-check period.

import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { CgroupCounters } from '../enforce/bpf';
import { checkHealth, waitHealthy } from './health';
import { StartRefusedError, type WorkerExit, type WorkerHandle, type WorkerLauncher, type WorkerSlot } from './launchers';
import { logTail } from './server-launcher';
import { seccompKills, SIGSYS_EXIT } from '../enforce/seccomp-kills';
import type { WorkerInfo, WorkerState } from '../agent-api/messages';

/** refused: the launcher would not start it (its tier failed a check); retried at the longest backoff. */

export interface SupervisorOptions {
  log: Logger;
  /** First restart delay; doubles per consecutive failure. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A worker that served this long resets the backoff. */
  stableMs?: number;
  startTimeoutMs?: number;
  healthIntervalMs?: number;
  /** Consecutive failed health checks after which a serving worker is killed and restarted. */
  healthFailures?: number;
  stopGraceMs?: number;
  /** Receives the last eBPF counters of each worker that ended (the tier's totals keep them). */
  onRetired?: (counters: CgroupCounters) => void;
  /** Receives the calls a seccomp filter killed a worker at (the tier's violation totals count them). */
  onSeccompKill?: (syscalls: string[]) => void;
}

export class WorkerSupervisor extends EventEmitter {
  private state: WorkerState = 'stopped';
  private since = new Date();
  private restarts = 0;
  private lastExit: WorkerInfo['lastExit'] = null;
  private refusal: WorkerInfo['refusal'] = null;
  private handle: WorkerHandle | null = null;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    readonly slot: WorkerSlot,
    private readonly launcher: WorkerLauncher,
    private readonly o: SupervisorOptions,
  ) {
    super();
  }

  info(): WorkerInfo {
    return {
      tier: this.slot.tier.name,
      id: this.slot.id,
      address: `unix:${this.slot.socketPath}`,
      socketPath: this.slot.socketPath,
      state: this.state,
      restarts: this.restarts,
      confinement: this.launcher.kind,
      cgroup: this.launcher.kind === 'container' ? `/fhirguard/${this.slot.tier.name}/${this.slot.cgroupName}` : null,
      pid: this.handle?.pid || null,
      since: this.since.toISOString(),
      lastExit: this.lastExit,
      refusal: this.refusal,
    };
  }

  /** The running worker's live eBPF counters, if any. */
  async counters(): Promise<CgroupCounters | null> {
    return this.handle ? this.handle.counters().catch(() => null) : null;
  }

  get current(): WorkerHandle | null {
    return this.handle;
  }

  private set(state: WorkerState): void {
    this.state = state;
    this.since = new Date();
    this.emit('change', this.info());
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Resolves when the worker reached `state` (or rejects when the supervisor stops first). */
  until(states: WorkerState[], timeoutMs = 60_000): Promise<WorkerInfo> {
    if (states.includes(this.state)) return Promise.resolve(this.info());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('change', on);
        reject(new Error(`${this.slot.id}: not ${states.join('|')} after ${timeoutMs} ms (state ${this.state})`));
      }, timeoutMs);
      // A wait (e.g. readers waiting for a writer that is refused) never keeps a stopped agent alive.
      t.unref();
      const on = (i: WorkerInfo): void => {
        if (states.includes(i.state)) {
          clearTimeout(t);
          this.off('change', on);
          resolve(i);
        }
      };
      this.on('change', on);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private backoff(failures: number): number {
    const base = this.o.backoffMs ?? 200;
    return Math.min(base * 2 ** Math.max(0, failures - 1), this.o.maxBackoffMs ?? 10_000);
  }

  private async run(): Promise<void> {
    const log = this.o.log.child({ tier: this.slot.tier.name, worker: this.slot.id });
    let failures = 0;
    while (!this.stopping) {
      this.set('starting');
      let handle: WorkerHandle;
      try {
        // The socket a killed worker left behind: the read tier may not unlink it itself.
        await rm(this.slot.socketPath, { force: true });
        handle = await this.launcher.launch(this.slot);
      } catch (err) {
        if (err instanceof StartRefusedError) {
          // Fail closed: no worker until the check passes; said once per distinct reason.
          const again = this.refusal?.message === err.message;
          this.refusal = { reason: err.reason, message: err.message, check: err.check };
          if (!again) log.error({ reason: err.reason, check: err.check }, `worker start REFUSED: ${err.message}`);
          // Every refused attempt, for fhirguard_worker_start_refusals_total.
          this.emit('refused', this.refusal);
          this.set('refused');
          await this.sleep(this.o.maxBackoffMs ?? 10_000);
          continue;
        }
        failures++;
        log.error({ err }, `worker did not start: ${(err as Error).message}`);
        this.lastExit = { code: null, signal: null, at: new Date().toISOString() };
        this.set('crashed');
        await this.sleep(this.backoff(failures));
        continue;
      }
      this.handle = handle;
      this.refusal = null;
      // stop() or drain() came while it was being launched (stop() saw no handle to stop):
      // it never served, so there is nothing to finish.
      if (this.stopping) void handle.stop(0);
      let servedAt = 0;
      const healthy = await waitHealthy(this.slot.socketPath, handle.exited, this.slot.startTimeoutMs ?? this.o.startTimeoutMs ?? 60_000, this.slot.health);
      if (healthy && !this.stopping) {
        this.set('ready');
        try {
          await handle.serve();
          servedAt = Date.now();
          // A worker drained while it was switching (a rollout gave up on it) never serves.
          if (!this.stopping) this.set('serving');
          log.info({ pid: handle.pid }, 'worker serving');
        } catch (err) {
          // Without its serve-phase policy the worker would run less confined than promised.
          log.error({ err }, `switching to the serve phase failed, restarting the worker: ${(err as Error).message}`);
          void handle.stop(0);
        }
      } else if (!this.stopping) {
        const tail = this.slot.logFile ? await logTail(this.slot.logFile) : [];
        const exited = await Promise.race([handle.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 100))]);
        const what = exited ? 'worker exited before it answered' : `worker did not answer GET ${this.slot.health ?? '/metadata'} in time, killing it`;
        log.error({ logTail: tail.length ? tail : undefined }, what);
        if (!exited) void handle.stop(0);
      }
      const exit = await this.watch(handle, log);
      const phase = servedAt ? 'serve' : 'boot';
      this.lastExit = { code: exit.code, signal: exit.signal, at: new Date().toISOString(), phase };
      // Said at once: the proxy stops routing to this worker now, not at its next health check.
      if (!this.stopping) this.set('crashed');
      const last = await handle.retire().catch((err) => {
        log.warn({ err }, 'reading the last eBPF counters failed');
        return null;
      });
      if (last) this.o.onRetired?.(last);
      // The eBPF policy's kills are counted on the cgroup; a seccomp filter's (SIGSYS) are in the kernel log.
      const killedBySeccomp = exit.code === SIGSYS_EXIT ? await seccompKills(handle.pid) : [];
      if (killedBySeccomp.length) this.o.onSeccompKill?.(killedBySeccomp);
      const counted = last ? Object.entries(last.syscalls).flatMap(([name, c]) => (c.violations > 0 ? [name] : [])) : [];
      const violations = [...new Set([...counted, ...killedBySeccomp])].sort();
      if (violations.length) this.lastExit.violations = violations;
      if (this.slot.logFile && !this.stopping) this.lastExit.logTail = await logTail(this.slot.logFile);
      if (violations.length && !this.stopping) {
        log.error({ phase, violations }, `worker's profile refused ${violations.join(', ')} in its ${phase} phase`);
      }
      // Then what ended it, for /workers and the proxy's 503.
      if (!this.stopping && (violations.length || this.lastExit.logTail?.length)) this.emit('change', this.info());
      this.handle = null;
      if (this.stopping) break;
      this.restarts++;
      failures = servedAt && Date.now() - servedAt >= (this.o.stableMs ?? 30_000) ? 1 : failures + 1;
      log.warn({ exit, restarts: this.restarts }, `worker exited (status ${exit.code ?? exit.signal}); restarting`);
      await this.sleep(this.backoff(failures));
    }
    this.set('stopped');
  }

  /** Waits for the worker's exit, killing it when its health checks keep failing. */
  private async watch(handle: WorkerHandle, log: Logger): Promise<WorkerExit> {
    let exited = false;
    void handle.exited.then(() => (exited = true));
    let misses = 0;
    const interval = this.o.healthIntervalMs ?? 5000;
    const timer = setInterval(() => {
      if (exited || this.stopping || this.state !== 'serving') return;
      void checkHealth(this.slot.socketPath, this.slot.healthTimeoutMs, this.slot.health).then((ok) => {
        misses = ok ? 0 : misses + 1;
        if (misses >= (this.o.healthFailures ?? 3) && !exited && !this.stopping) {
          log.error({ misses }, 'worker stopped answering GET /metadata, killing it');
          void handle.stop(0);
        }
      });
    }, interval);
    try {
      return await handle.exited;
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Takes the worker out of service ahead of stop() (a rollout replacing it): state
   * 'draining', on which the proxy stops sending it requests and lets those in flight
   * finish; no health-check kill and no restart from now on.
   */
  drain(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.wake?.();
    if (this.handle) this.set('draining');
  }

  /** `graceMs`: how long the worker may take to finish after SIGTERM (0: SIGKILL now, for a
   * worker that never served; a SIGTERM reaching a container's pid 1 before it has a handler
   * is lost). */
  async stop(graceMs = this.o.stopGraceMs ?? 10_000): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const h = this.handle;
    if (h) await h.stop(graceMs);
    await this.loop;
    this.loop = null;
  }
}
