// The two ways the agent runs a worker: confined (a runc container under the tier's
// seccomp profile, with the tier's eBPF policy on its cgroup) or, in degraded mode, as a
// plain child process. The supervisor sees the same handle either way.

import { spawn, type ChildProcess } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import type { CgroupCounters } from '../enforce/bpf';
import { balanceCpuWeights } from '../enforce/cpu-weight';
import { launchConfined, type ConfinedProcess, type EnforcementContext } from '../enforce/launch';
import { tierIdentity, type Identities } from '../enforce/identities';
import type { TierProfiles } from '../enforce/tier-profiles';
import type { ImageRoot } from '../image/container';
import type { WorkerImage } from '../image/worker-image';
import type { TierConfig } from '../policy';
import type { RefusalCheck } from '../trust/reasons';

export interface WorkerSlot {
  tier: TierConfig;
  /** Unique among the agent's workers, e.g. read-0; also the container id. */
  id: string;
  socketDir: string;
  socketPath: string;
  /** Last component of the worker's cgroup /fhirguard/<tier>/<cgroupName> (containers only). */
  cgroupName: string;
  /** An operator's server: the path its health check GETs, how long one may take, how long it may take to start, its log. */
  health?: string;
  healthTimeoutMs?: number;
  startTimeoutMs?: number;
  logFile?: string;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerHandle {
  readonly pid: number;
  readonly exited: Promise<WorkerExit>;
  /** Boot → serve phase (no-op where there is no eBPF policy). */
  serve(): Promise<void>;
  /** Shutdown phase, SIGTERM, SIGKILL after graceMs. */
  stop(graceMs: number): Promise<void>;
  /** After exit: the cgroup's last eBPF counters (then dropped), or null. */
  retire(): Promise<CgroupCounters | null>;
  /** Live eBPF counters, or null. */
  counters(): Promise<CgroupCounters | null>;
  readonly cgid: string | null;
}

export interface WorkerLauncher {
  readonly kind: 'container' | 'process';
  /** `profiles`: run under these (already checked) instead of the ones loaded at start. */
  launch(slot: WorkerSlot, profiles?: TierProfiles): Promise<WorkerHandle>;
}

/**
 * Thrown by a launcher that must not start a worker (its tier failed a check): not a crash
 * to retry at once. `reason` is one of a fixed set (a metric label); `check` says which
 * check refused (the signed statements, or the image's scan gate).
 */
export class StartRefusedError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly check: RefusalCheck = 'trust',
  ) {
    super(message);
  }
}

export interface WorkerCommand {
  install: string;
  db: string;
  logLevel: string;
}

/** The worker's command line; in an image, with the image's program and mount points. */
function workerArgs(cmd: WorkerCommand, slot: WorkerSlot, image?: ImageRoot): string[] {
  return [
    ...(image ? image.entrypoint : [path.join(cmd.install, 'bin', 'fhirguard')]),
    'worker',
    '--tier',
    slot.tier.name,
    '--db',
    image ? path.posix.join(image.dataDir, path.basename(cmd.db)) : cmd.db,
    '--listen',
    `unix:${image ? path.posix.join(image.socketDir, path.basename(slot.socketPath)) : slot.socketPath}`,
    '--log-level',
    cmd.logLevel,
    ...(slot.tier.readOnly ? ['--read-only'] : []),
  ];
}

export class ContainerLauncher implements WorkerLauncher {
  readonly kind = 'container';

  constructor(
    private readonly ctx: EnforcementContext,
    private readonly cmd: WorkerCommand,
    private readonly profiles: ReadonlyMap<string, TierProfiles>,
    /** Register eBPF policies (the kernel supports them). */
    private readonly ebpf: boolean,
    /** Run workers from this image (gated and unpacked before each start) instead of host files. */
    private readonly image?: WorkerImage,
  ) {}

  async launch(slot: WorkerSlot, checked?: TierProfiles): Promise<WorkerHandle> {
    const profiles = checked ?? this.profiles.get(slot.tier.name);
    if (!profiles) throw new Error(`no profiles loaded for tier ${slot.tier.name}`);
    const image = this.image ? await this.image.admit() : undefined;
    const p = await launchConfined(this.ctx, {
      tier: slot.tier.name,
      readOnly: slot.tier.readOnly,
      mode: slot.tier.mode,
      profiles,
      ebpf: this.ebpf,
      id: slot.id,
      cgroupName: slot.cgroupName,
      dataDir: path.dirname(this.cmd.db),
      socketDir: slot.socketDir,
      // The worker logs JSON lines on stderr: they go to the agent's stderr.
      args: image ? workerArgs(this.cmd, slot, image) : [process.execPath, ...workerArgs(this.cmd, slot)],
      stdio: ['ignore', 2, 2],
      ...(image ? { image } : {}),
    });
    // The parent cgroups exist now (runc made them): weigh them as the workers they hold.
    await balanceCpuWeights().catch(() => undefined);
    return confinedHandle(p, async () => {
      // Without the start gate the pid is not known yet: runc's state has it.
      if (!p.container.pid) p.container.pid = (await this.ctx.runc.state(slot.id))?.pid ?? 0;
    });
  }
}

/** Degraded mode: a plain process, as its tier class's identity when the agent is root. */
export class ProcessLauncher implements WorkerLauncher {
  readonly kind = 'process';

  constructor(
    private readonly cmd: WorkerCommand,
    private readonly identities: Identities | null,
  ) {}

  async launch(slot: WorkerSlot): Promise<WorkerHandle> {
    const identity = this.identities ? tierIdentity(this.identities, slot.tier.readOnly) : null;
    // From the install the agent staged (root's, readable by the worker identity): the
    // checkout itself may be in a directory closed to that identity.
    const child = spawn(process.execPath, workerArgs(this.cmd, slot), {
      stdio: ['ignore', 2, 2],
      cwd: this.cmd.install,
      ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
    });
    // The socket gets the directory's group (the proxy's) but the worker's umask: the proxy
    // must be able to connect, nobody else (a container's umask does this there).
    return processHandle(child, async () => {
      if (identity) await chmod(slot.socketPath, 0o660);
    });
  }
}

/** The supervisor's handle on a confined process; `beforeServe` runs before its serve phase. */
export function confinedHandle(p: ConfinedProcess, beforeServe: () => Promise<void> = async () => undefined): WorkerHandle {
  const exited = p.container.exited.then((e) => ({ code: e.code, signal: e.signal }));
  return {
    get pid() {
      return p.container.pid;
    },
    exited,
    cgid: p.cgid,
    serve: async () => {
      await beforeServe();
      await p.setPhase('serve');
    },
    stop: async (graceMs) => {
      if (p.container.running) await p.setPhase('shutdown').catch(() => undefined);
      await p.stop(graceMs);
    },
    retire: async () => {
      await p.container.cleanup();
      return p.forget();
    },
    counters: () => p.counters(),
  };
}

/** The handle on a plain child process, once it has spawned (no phases, no counters). */
export async function processHandle(child: ChildProcess, serve: () => Promise<void> = async () => undefined): Promise<WorkerHandle> {
  const exited = new Promise<WorkerExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: 127, signal: null }));
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  return {
    pid: child.pid ?? 0,
    exited,
    cgid: null,
    serve,
    stop: async (graceMs) => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
    },
    retire: async () => null,
    counters: async () => null,
  };
}
