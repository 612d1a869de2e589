// How the agent runs a tier's own server (policy `server:`): the same container, seccomp
// profile, eBPF phases and supervisor as a reference worker, from what the policy names
// instead of fhirguard's install. Its output goes to a log file per worker (a JVM's start
// is long and loud), whose end the supervisor reports when it fails.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { serverContainerSpec } from '../enforce/confine';
import { tierIdentity, type Identities } from '../enforce/identities';
import { startConfined, type EnforcementContext } from '../enforce/launch';
import type { TierProfiles } from '../enforce/tier-profiles';
import type { TierConfig } from '../policy';
import { SOCKET_PLACEHOLDER, type ServerConfig } from '../policy/server';
import { recordingSeccomp } from '../record/profile-writer';
import { confinedHandle, processHandle, type WorkerHandle, type WorkerLauncher, type WorkerSlot } from './launchers';

export interface ServerLaunchEnv {
  /** null: containers cannot run here (a plain process as the tier's identity, loudly). */
  ctx: EnforcementContext | null;
  identities: Identities;
  /** The agent is root: state directories are given to the tier's identity. */
  root: boolean;
  ebpf: boolean;
  /** Where each worker's output goes: <logDir>/<worker id>.log (the previous run's as .log.1). */
  logDir: string;
}

/** How long one health check of a serving server may take (three in a row failing restart it). */
export const SERVER_HEALTH_TIMEOUT_MS = 10_000;

export function serverLogFile(logDir: string, id: string): string {
  return path.join(logDir, `${id}.log`);
}

/** The first line of a secret file, read as the agent (root) at each start. */
async function secretValue(file: string, name: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`the server's secret ${name} cannot be read from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text.split('\n')[0].replace(/\r$/, '');
}

/** What the policy names must be there before runc is asked (its own error would not say which). */
async function checkPaths(tier: string, s: ServerConfig): Promise<void> {
  for (const p of [s.command[0], ...s.readOnly]) {
    if (!existsSync(p)) throw new Error(`tier ${tier}: the server's ${p === s.command[0] ? 'program' : 'read-only path'} ${p} does not exist`);
  }
}

/** The tier's state directories, made and given to its identity (write tiers only have any). */
async function prepareState(s: ServerConfig, owner: { uid: number; gid: number } | null): Promise<void> {
  for (const dir of s.state) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (owner) {
      const st = await stat(dir);
      if (st.uid !== owner.uid || st.gid !== owner.gid) await chown(dir, owner.uid, owner.gid);
    }
  }
}

/** Keeps the previous run's log as .1 and opens a new one (append: fd for the child's stdout and stderr). */
async function openLog(logDir: string, id: string): Promise<import('node:fs/promises').FileHandle> {
  await mkdir(logDir, { recursive: true, mode: 0o750 });
  const file = serverLogFile(logDir, id);
  if (existsSync(file)) await rename(file, `${file}.1`).catch(() => undefined);
  return open(file, 'a', 0o640);
}

export function substituteSocket(values: readonly string[], socketPath: string): string[] {
  return values.map((v) => v.split(SOCKET_PLACEHOLDER).join(socketPath));
}

export class ServerLauncher implements WorkerLauncher {
  readonly kind: WorkerLauncher['kind'];

  constructor(
    private readonly env: ServerLaunchEnv,
    private readonly tier: TierConfig & { server: ServerConfig },
    private readonly profiles: TierProfiles | null,
    private readonly mode: 'enforce' | 'audit' | 'record' = tier.mode,
  ) {
    this.kind = env.ctx ? 'container' : 'process';
  }

  async launch(slot: WorkerSlot, checked?: TierProfiles): Promise<WorkerHandle> {
    const s = this.tier.server;
    const identity = tierIdentity(this.env.identities, this.tier.readOnly);
    await checkPaths(this.tier.name, s);
    await prepareState(s, this.env.root ? identity : null);
    const secrets = await Promise.all(s.secrets.map(async (x) => `${x.name}=${await secretValue(x.file, x.name)}`));
    const args = substituteSocket(s.command, slot.socketPath);
    const env = [...substituteSocket(s.env, slot.socketPath), ...secrets];
    const log = await openLog(this.env.logDir, slot.id);
    try {
      const { ctx } = this.env;
      if (!ctx) {
        const child = spawn(args[0], args.slice(1), {
          stdio: ['ignore', log.fd, log.fd],
          cwd: '/',
          env: Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
          ...(this.env.root ? { uid: identity.uid, gid: identity.gid } : {}),
        });
        return await processHandle(child);
      }
      const profiles = checked ?? this.profiles;
      const spec = serverContainerSpec(
        { tier: this.tier.name, readOnly: this.tier.readOnly, seccomp: profiles?.seccomp ?? null, seccompMode: this.mode },
        {
          args,
          env,
          readOnly: s.readOnly,
          state: s.state,
          socketDir: slot.socketDir,
          scratchBytes: s.scratchMiB * 1024 * 1024,
          hostNetwork: s.egress.length > 0,
          uid: identity.uid,
          gid: identity.gid,
          pidsLimit: s.pidsLimit,
          memoryBytes: s.memoryBytes,
        },
        slot.id,
        slot.cgroupName,
      );
      // Recorded as reference workers are: what the template refuses answers as under enforcement.
      if (this.mode === 'record' && profiles) spec.seccomp = recordingSeccomp(profiles.seccomp);
      const p = await startConfined(ctx, {
        id: slot.id,
        spec,
        stdio: ['ignore', log.fd, log.fd],
        mode: this.mode,
        ebpf: this.env.ebpf && profiles ? profiles.ebpf : null,
        egress: s.egress.map((e) => ({ cidr: e.cidr, port: e.port })),
      });
      return confinedHandle(p, async () => {
        if (!p.container.pid) p.container.pid = (await ctx.runc.state(slot.id))?.pid ?? 0;
      });
    } finally {
      // The child holds its own copy of the descriptor.
      await log.close();
    }
  }
}

/** The last `lines` lines of a worker's log (what the supervisor reports when it fails). */
export async function logTail(file: string, lines = 20, maxBytes = 16_384): Promise<string[]> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const text = buf.toString('utf8');
    const all = text.split('\n').filter((l) => l.trim() !== '');
    return all.slice(-lines).map((l) => (l.length > 500 ? `${l.slice(0, 500)}…` : l));
  } finally {
    await fh.close();
  }
}
