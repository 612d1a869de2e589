// A tier's reference worker in its container, with its eBPF policy registered on the
// container's cgroup BEFORE runc runs: fhirguard creates the cgroup v2 directory itself,
// registers it, and runc joins it. So the recorder (or the enforcer) sees everything the
// container does, runc's own set-up inside it included (mounts, pivot_root, dropping
// capabilities, installing the seccomp filter), not only what follows the worker's exec.
// The agent's start gate registers later (after runc prepared the root), which is right
// for enforcement but would leave runc's steps unrecorded.
//
// Phases as the agent runs them: boot until GET /metadata answers, then serve; shutdown
// just before the SIGTERM that stops the worker.

import { existsSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { waitHealthy } from '../agent/health';
import type { BpfPolicy, CgroupCounters, Phase, RecordedSets } from '../enforce/bpf';
import { tierContainerSpec } from '../enforce/confine';
import { Container } from '../enforce/container';
import type { EnforcementContext } from '../enforce/launch';
import type { OciSeccomp } from '../enforce/seccomp';
import { workerArgs } from './backends';

export interface ConfinedWorkerOptions {
  tier: string;
  readOnly: boolean;
  /** Container id (unique among runc's containers under the state dir). */
  id: string;
  db: string;
  socketPath: string;
  seccomp: OciSeccomp;
  /** Registered on the cgroup before runc runs (record, or enforce with `record: true`). */
  bpf: BpfPolicy;
  logLevel: string;
  startTimeoutMs?: number;
}

export interface StopResult {
  /** Host pid the worker had. */
  pid: number;
  code: number;
  signal: NodeJS.Signals | null;
  /** The cgroup's counters and recorded sets after the container was gone. */
  counters: CgroupCounters;
}

export class ConfinedWorker {
  /** Workers not stopped yet, for a command interrupted by a signal to stop them. */
  static readonly live = new Set<ConfinedWorker>();
  private stderrTail = '';
  private phase: Phase = 'boot';
  /** Host pid of the worker (runc's state once it answered), 0 when unknown. */
  pid = 0;

  private constructor(
    readonly ctx: EnforcementContext & { bpf: NonNullable<EnforcementContext['bpf']> },
    readonly o: ConfinedWorkerOptions,
    readonly container: Container,
    readonly cgroupDir: string,
    readonly cgid: string,
  ) {
    const pipe = container.child.stderr;
    pipe?.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-8000);
    });
  }

  /** The worker's last log lines (its stderr). */
  get log(): string {
    return this.stderrTail;
  }

  get currentPhase(): Phase {
    return this.phase;
  }

  static async start(ctx: EnforcementContext, o: ConfinedWorkerOptions): Promise<ConfinedWorker> {
    const bpf = ctx.bpf;
    if (!bpf) throw new Error('eBPF is not available here: recording needs the eBPF recorder (root, fhirguard-bpf built, a kernel that loads it)');
    const spec = tierContainerSpec(
      { tier: o.tier, readOnly: o.readOnly, seccomp: null, seccompMode: 'enforce' },
      {
        install: ctx.install,
        dataDir: path.dirname(o.db),
        socketDir: path.dirname(o.socketPath),
        uid: ctx.identities.writer.uid,
        gid: ctx.identities.writer.gid,
      },
      o.id,
      { args: [process.execPath, ...workerArgs(ctx.install, { tier: o.tier, db: o.db, socketPath: o.socketPath, readOnly: o.readOnly, logLevel: o.logLevel })] },
    );
    spec.seccomp = o.seccomp;
    const cgroupDir = path.join(ctx.cgroupV2Mount, spec.cgroupsPath);
    // A directory left by an interrupted run would carry another cgroup id: start afresh.
    if (existsSync(cgroupDir)) await rmdir(cgroupDir).catch(() => undefined);
    await mkdir(cgroupDir, { recursive: true });
    let cgid: string;
    try {
      cgid = (await bpf.setPolicy(cgroupDir, o.bpf)).cgid;
    } catch (err) {
      await rmdir(cgroupDir).catch(() => undefined);
      throw err;
    }
    let container: Container;
    try {
      container = await Container.start({
        runc: ctx.runc,
        id: o.id,
        bundleDir: path.join(ctx.layout.bundles, o.id),
        spec,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (err) {
      await bpf.forget(cgid).catch(() => undefined);
      await rmdir(cgroupDir).catch(() => undefined);
      throw err;
    }
    const w = new ConfinedWorker({ ...ctx, bpf }, o, container, cgroupDir, cgid);
    ConfinedWorker.live.add(w);
    if (!(await waitHealthy(o.socketPath, container.exited, o.startTimeoutMs ?? 60_000))) {
      const exit = container.running ? null : await container.exited;
      await w.stop(0).catch(() => undefined);
      throw new Error(`the ${o.tier} worker did not answer GET /metadata${exit ? ` (it exited with status ${exit.code})` : ''}: ${w.log.trim().slice(-1500) || 'no log'}`);
    }
    w.pid = (await ctx.runc.state(o.id))?.pid ?? 0;
    return w;
  }

  async setPhase(phase: Phase): Promise<void> {
    await this.ctx.bpf.setPhase(this.cgroupDir, phase);
    this.phase = phase;
  }

  /** Live counters of the cgroup (violations so far, recorded sets). */
  async counters(): Promise<CgroupCounters | null> {
    return (await this.ctx.bpf.counters(this.cgid)).cgroups[0] ?? null;
  }

  /**
   * Shutdown phase, SIGTERM (SIGKILL after graceMs), wait for the container to be gone, read
   * the cgroup's last counters, drop its eBPF state and the cgroup directory.
   */
  async stop(graceMs = 10_000): Promise<StopResult> {
    if (this.container.running) await this.setPhase('shutdown').catch(() => undefined);
    let counters: CgroupCounters | undefined;
    let exit;
    try {
      exit = await this.container.stop(graceMs);
      counters = (await this.ctx.bpf.counters(this.cgid)).cgroups[0];
    } finally {
      ConfinedWorker.live.delete(this);
      await this.ctx.bpf.forget(this.cgid).catch(() => undefined);
      if (existsSync(this.cgroupDir)) await rmdir(this.cgroupDir).catch(() => undefined);
    }
    if (!counters) throw new Error(`the counters of ${this.cgroupDir} (cgroup ${this.cgid}) are gone`);
    return { pid: this.pid, code: exit.code, signal: exit.signal, counters };
  }
}

/** Stops every worker still running (a recording interrupted by SIGINT or SIGTERM). */
export async function stopAllConfined(): Promise<void> {
  await Promise.all([...ConfinedWorker.live].map((w) => w.stop(0).catch(() => undefined)));
}

/** Sets of a recording cgroup, or an error naming what is missing. */
export function setsOf(c: CgroupCounters): RecordedSets {
  if (!c.recorded) throw new Error(`cgroup ${c.cgid}: its policy did not record`);
  return c.recorded;
}

/** Violations counted per syscall (write opens of a no-write tier count under their open call). */
export function violationsOf(c: CgroupCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, s] of Object.entries(c.syscalls)) if (s.violations > 0) out[name] = s.violations;
  return out;
}
