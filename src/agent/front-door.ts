// The front door, run by the agent: `fhirguard proxy`, the one process that parses every
// untrusted byte from the network, confined like a worker. A runc container of its own
// (enforce/confine.ts: the host's network namespace to listen in, nothing writable, the
// install, the policy copy, the workers' sockets and the agent's API socket read-only), as
// the proxy identity, under the `proxy` seccomp profile and an eBPF policy on its cgroup:
// boot, then serve once its admin listener answers /healthz (no exec, no new processes, no
// write opens, connect only to the policy's upstream addresses). Restarted with backoff when
// it dies. Where this host cannot run containers: a plain process as the proxy identity,
// said loudly, as workers are.

import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CgroupCounters, EgressRule } from '../enforce/bpf';
import { FRONT_DOOR, frontDoorContainerSpec } from '../enforce/confine';
import type { Identities } from '../enforce/identities';
import { startConfined, type EnforcementContext } from '../enforce/launch';
import { recordingSeccomp } from '../record/profile-writer';
import type { TierProfiles } from '../enforce/tier-profiles';
import type { Policy } from '../policy';
import { confinedHandle, processHandle, type WorkerHandle } from './launchers';
import type { FrontDoorInfo, FrontDoorState } from '../agent-api/messages';
import { askReload, type ReloadAnswer } from '../agent-api/reload';

/** record: every call allowed and logged, the eBPF recorder on (`fhirguard record --front-door`). */
export type FrontDoorMode = 'enforce' | 'audit' | 'record';

export interface FrontDoorOptions {
  /** The proxy's own options (listen, admin, limits, ...) as `fhirguard proxy` takes them. */
  args: string[];
  policy: Policy;
  policyFile: string;
  agentSocket: string;
  stateDir: string;
  install: string;
  identities: Identities;
  /** null: containers cannot run here (a plain process, loudly). */
  ctx: EnforcementContext | null;
  /** The `proxy` profiles; null runs the container without seccomp or eBPF (said loudly). */
  profiles: TierProfiles | null;
  mode: FrontDoorMode;
  ebpf: boolean;
  /** Tells this agent's cgroups from another's on the same host (cgroups are host-wide). */
  instance: string;
  logLevel: string;
  log: Logger;
  /** First restart delay; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  startTimeoutMs?: number;
  /** An ended container's last eBPF counters (Prometheus counters must not go down at a restart). */
  onRetired?: (c: CgroupCounters) => void;
}

/** The value of `--name <v>` (or `--name=<v>`) in args, else `fallback`. */
function optionIn(args: readonly string[], name: string, fallback: string): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}` && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return fallback;
}

/** host:port → { host, port }; [::1]:9464 too. */
export function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/**
 * The URLs the proxy connects to: each tier's upstreams and, with authorization, the token
 * issuer (its discovery document), its JWKS and its introspection endpoint when the policy
 * names them. A JWKS the discovery document puts on another host must be named in the policy
 * (`jwksUri`) for the front door to reach it.
 */
function frontDoorTargets(policy: Policy): string[] {
  const a = policy.authorization;
  return [...policy.tiers.flatMap((t) => t.upstreams), ...(a ? [a.issuer, ...(a.jwksUri ? [a.jwksUri] : []), ...(a.introspection ? [a.introspection.endpoint] : [])] : [])];
}

/**
 * Where the proxy may connect besides Unix sockets: each address of each URL it connects to
 * (frontDoorTargets), and the name servers when one is named by a host name the hosts file
 * may not hold.
 */
export async function frontDoorEgress(policy: Policy): Promise<EgressRule[]> {
  const rules = new Map<string, EgressRule>();
  const add = (ip: string, port: number): void => {
    const cidr = `${ip}/${isIP(ip) === 6 ? 128 : 32}`;
    rules.set(`${cidr} ${port}`, { cidr, port });
  };
  let named = false;
  for (const u of frontDoorTargets(policy)) {
    if (u.startsWith('unix:')) continue;
    const url = new URL(u);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    if (isIP(host)) add(host, port);
    else {
      named ||= host !== 'localhost';
      for (const a of await lookup(host, { all: true })) add(a.address, port);
    }
  }
  if (named && existsSync('/etc/resolv.conf')) {
    for (const m of readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^\s*nameserver\s+(\S+)/gm)) if (isIP(m[1])) add(m[1], 53);
  }
  return [...rules.values()];
}

/** GET http://address/healthz answers 200. */
function healthz(address: string): Promise<boolean> {
  const { host, port } = hostPort(address);
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/healthz', timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
  });
}

export class FrontDoor {
  private state: FrontDoorState = 'starting';
  private running: WorkerHandle | null = null;
  private stopping = false;
  private restarts = 0;
  private lastExit: FrontDoorInfo['lastExit'] = null;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private readonly admin: string;
  private cgroup: string | null = null;
  private readonly policyCopy: string;

  constructor(private readonly o: FrontDoorOptions) {
    this.admin = optionIn(o.args, 'admin', process.env.FHIRGUARD_ADMIN ?? '127.0.0.1:9464');
    if (hostPort(this.admin).port === 0) throw new Error(`the front door's admin listener needs a fixed port (got ${this.admin}): the agent checks its health there`);
    this.policyCopy = path.join(o.stateDir, 'proxy', path.basename(o.policyFile));
    const asked = optionIn(o.args, 'processes', '1');
    if (o.ctx && asked !== '1' && asked !== 'auto') {
      o.log.warn(`--processes ${asked}: the confined front door runs one process, since its seccomp and eBPF policy forbid the exec another would need (docs/operations.md)`);
    }
  }

  get confinement(): 'container' | 'process' {
    return this.o.ctx ? 'container' : 'process';
  }

  info(): FrontDoorInfo {
    return {
      state: this.state,
      confinement: this.confinement,
      pid: this.running?.pid ?? null,
      cgroup: this.running ? this.cgroup : null,
      restarts: this.restarts,
      lastExit: this.lastExit,
    };
  }

  /** The running container's eBPF counters, or null. */
  async counters(): Promise<CgroupCounters | null> {
    return (await this.running?.counters().catch(() => null)) ?? null;
  }

  /** Copies the policy where the proxy reads it (root's, world-readable), then runs it until stop(). */
  start(): void {
    const dir = path.dirname(this.policyCopy);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    this.writePolicyCopy(readFileSync(this.o.policyFile));
    const { log } = this.o;
    if (!this.o.ctx) log.error('FRONT DOOR UNCONFINED: the proxy runs as a plain process, without a container, seccomp or eBPF (this host cannot run containers)');
    else if (!this.o.profiles) log.error('FRONT DOOR UNCONFINED: the proxy runs in a container without its seccomp and eBPF profiles');
    this.loop = this.run();
  }

  /**
   * Copies the policy file where the proxy reads it and has the proxy put it in force. When
   * the proxy does not, the copy goes back to what it runs, so a restarted proxy runs that too.
   */
  async reload(): Promise<ReloadAnswer> {
    const before = readFileSync(this.policyCopy);
    this.writePolicyCopy(readFileSync(this.o.policyFile));
    const answer = await askReload(hostPort(this.admin), '/reload').catch((err: Error): ReloadAnswer => ({
      result: 'refused',
      error: err.message,
      policy: { file: this.policyCopy, digest: 'unknown' },
    }));
    if (answer.result === 'refused') this.writePolicyCopy(before);
    return answer;
  }

  /** Replaced whole (rename), so the proxy never reads half a file. */
  private writePolicyCopy(bytes: Buffer): void {
    const next = `${this.policyCopy}.next`;
    writeFileSync(next, bytes, { mode: 0o644 });
    chmodSync(next, 0o644);
    renameSync(next, this.policyCopy);
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running?.stop(graceMs);
    await this.loop;
    this.state = 'stopped';
  }

  private args(): string[] {
    // One process: its confinement forbids the exec a second one would need.
    return [path.join(this.o.install, 'bin', 'fhirguard'), 'proxy', '--policy', this.policyCopy, '--agent', this.o.agentSocket, '--log-level', this.o.logLevel, ...this.o.args, '--processes', '1'];
  }

  private async launch(n: number): Promise<WorkerHandle> {
    const { ctx, identities } = this.o;
    if (!ctx) return this.launchProcess();
    const id = `${FRONT_DOOR}-${n}`;
    const profiles = this.o.profiles;
    const spec = frontDoorContainerSpec(
      { seccomp: profiles?.seccomp ?? null, seccompMode: this.o.mode },
      {
        install: this.o.install,
        uid: identities.proxy.uid,
        gid: identities.proxy.gid,
        readOnly: [path.dirname(this.policyCopy), path.join(this.o.stateDir, 'run'), this.o.agentSocket],
      },
      id,
      { args: [process.execPath, ...this.args()], env: ['FHIRGUARD_CONFINED=agent'] },
      `${id}-${this.o.instance}`,
    );
    // Recorded as its workers are: the template's refusals answer as under enforcement.
    if (this.o.mode === 'record' && profiles) spec.seccomp = recordingSeccomp(profiles.seccomp);
    const p = await startConfined(ctx, {
      id,
      spec,
      stdio: ['ignore', 2, 2],
      mode: this.o.mode,
      ebpf: this.o.ebpf && profiles ? profiles.ebpf : null,
      egress: await frontDoorEgress(this.o.policy),
    });
    this.cgroup = spec.cgroupsPath;
    return confinedHandle(p);
  }

  private async launchProcess(): Promise<WorkerHandle> {
    const { proxy } = this.o.identities;
    const root = process.getuid?.() === 0;
    const child = spawn(process.execPath, this.args(), { stdio: ['ignore', 2, 2], cwd: this.o.install, ...(root ? { uid: proxy.uid, gid: proxy.gid } : {}) });
    this.cgroup = null;
    return processHandle(child);
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = null;
  }

  /** Healthy within the start timeout (false: it exited, or never answered). */
  private async healthy(r: WorkerHandle): Promise<boolean> {
    let gone = false;
    void r.exited.then(() => (gone = true));
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 60_000);
    let delay = 20;
    while (!gone && !this.stopping && Date.now() < deadline) {
      if (await healthz(this.admin)) return true;
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 250);
    }
    return false;
  }

  private async run(): Promise<void> {
    const { log } = this.o;
    let failures = 0;
    for (let n = 0; !this.stopping; n++) {
      this.state = 'starting';
      let r: WorkerHandle;
      try {
        r = await this.launch(n);
      } catch (err) {
        failures++;
        this.state = 'crashed';
        log.error({ err }, `the front door did not start: ${(err as Error).message}`);
        await this.sleep(this.backoff(failures));
        continue;
      }
      this.running = r;
      if (this.stopping) void r.stop(0);
      let servedAt = 0;
      if (await this.healthy(r)) {
        try {
          await r.serve();
          servedAt = Date.now();
          if (!this.stopping) this.state = 'serving';
          log.info({ pid: r.pid, confinement: this.confinement }, 'front door serving');
        } catch (err) {
          // Without its serve-phase policy the proxy would run less confined than promised.
          log.error({ err }, `switching the front door to its serve phase failed, restarting it: ${(err as Error).message}`);
          void r.stop(0);
        }
      } else if (!this.stopping) {
        log.error(`the front door did not answer GET http://${this.admin}/healthz in time, killing it`);
        void r.stop(0);
      }
      const exit = await r.exited;
      this.lastExit = { code: exit.code, signal: exit.signal, at: new Date().toISOString() };
      const last = await r.retire().catch(() => null);
      if (last) this.o.onRetired?.(last);
      this.running = null;
      if (this.stopping) break;
      this.state = 'crashed';
      this.restarts++;
      failures = servedAt && Date.now() - servedAt >= 30_000 ? 1 : failures + 1;
      log.error({ exit, restarts: this.restarts }, `the front door exited (status ${exit.code ?? exit.signal}); restarting it`);
      await this.sleep(this.backoff(failures));
    }
  }

  private backoff(failures: number): number {
    return Math.min((this.o.backoffMs ?? 500) * 2 ** Math.max(0, failures - 1), this.o.maxBackoffMs ?? 10_000);
  }
}
