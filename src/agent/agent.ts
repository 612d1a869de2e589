// The privileged agent: runs the workers of every tier that has no upstreams of its own,
// confined as far as this host allows, keeps them running, and tells the unprivileged
// proxy (over its Unix-socket API) where they are, what state they are in, and what the
// kernel counted. Where confinement is impossible it says so loudly, and refuses tiers
// whose policy says `enforcement: required`.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { openEnforcement, type EnforcementStatus } from '../enforce/open';
import type { EnforcementContext } from '../enforce/launch';
import type { Identities } from '../enforce/identities';
import { checkDataDir, prepareDataDir, prepareSocketDir, socketDirOwner, stateLayout, unsearchableAncestor } from '../enforce/layout';
import { FRONT_DOOR } from '../enforce/confine';
import { seccompProfilePath } from '../enforce/seccomp';
import { loadTierProfiles, type TierProfiles } from '../enforce/tier-profiles';
import type { WorkerImage } from '../image/worker-image';
import type { CgroupCounters } from '../enforce/bpf';
import type { Policy, TierConfig } from '../policy';
import type { TierTrust, TrustGate } from '../trust/start-check';
import { CounterTotals } from './counters';
import { decideTier } from './enforcement';
import { FrontDoor, hostPort, type FrontDoorMode } from './front-door';
import { AgentPolicyReload } from './policy-reload';
import { askReload, type ReloadAnswer } from '../agent-api/reload';
import { describeArtifacts, launcherOf, nextArtifacts, type LaunchEnv, type TierArtifacts } from './generation';
import type { WorkerLauncher } from './launchers';
import { runRollout, type Generation, type RolloutProgress, type RolloutRequest, type RolloutResult } from './rollout';
import { SERVER_HEALTH_TIMEOUT_MS, serverLogFile } from './server-launcher';
import { WorkerSupervisor, type SupervisorOptions } from './supervisor';
import type { CountersReport, FrontDoorInfo, ProfileInfo, TierEnforcement, WorkerInfo } from '../agent-api/messages';

export interface AgentOptions {
  policy: Policy;
  profilesDir: string;
  stateDir: string;
  db: string;
  install: string;
  /** Who the proxy and each tier class's workers run as (all the agent's own user when it is not root). */
  identities: Identities;
  runcPath?: string;
  /** Run containers and seccomp without the eBPF policy (reported inactive, on request). */
  withoutEbpf?: boolean;
  log: Logger;
  workerLogLevel?: string;
  /** When set, every worker start (restarts too) needs its tier's signed statement to verify. */
  trust?: TrustGate;
  /** Run workers from this image (`--image`) instead of the host's files; needs containers. */
  image?: WorkerImage;
  /** Run the proxy too, confined (startFrontDoor): its own options and the eBPF action. */
  frontDoor?: { args: string[]; mode: Exclude<FrontDoorMode, 'record'>; policyFile: string; agentSocket: string };
  /** `up`'s own signing key signed the tiers: a reloaded policy is signed again with it. */
  resign?(next: Policy): Promise<void>;
  /** The admin listener of the proxy `up` runs beside this agent (not root): a reload reaches it there. */
  proxyAdmin?: string;
  /** Server tiers to run in record mode (`fhirguard record --server`). */
  recordTiers?: readonly string[];
  /** Every ended worker's last eBPF counters, by tier (a recording reads its sets there). */
  onRetired?: (tier: string, counters: CgroupCounters) => void;
  /** Supervisor tuning (tests shorten the backoff). */
  supervisor?: Partial<Omit<SupervisorOptions, 'log' | 'onRetired' | 'onSeccompKill'>>;
}

export class Agent extends EventEmitter {
  private status!: EnforcementStatus;
  private ctx: EnforcementContext | null = null;
  private tiers: TierEnforcement[] = [];
  private profiles = new Map<string, TierProfiles>();
  private supervisors: WorkerSupervisor[] = [];
  private totals!: CounterTotals;
  private stopping = false;
  /** What each tier's workers run now, and what a start needs (rollouts build on them). */
  private env!: LaunchEnv;
  private artifacts = new Map<string, TierArtifacts>();
  private rollouts = new Map<string, { generation: number; running: boolean }>();
  private instance = '';
  private frontDoor: FrontDoor | null = null;
  private policyReload: AgentPolicyReload | undefined;
  private frontDoorProfiles: TierProfiles | null = null;
  /** Refused start attempts by tier and reason (fhirguard_worker_start_refusals_total). */
  private startRefusals = new Map<string, Record<string, number>>();

  constructor(readonly o: AgentOptions) {
    super();
  }

  get enforcementStatus(): EnforcementStatus {
    return this.status;
  }

  /** Probes the host, decides each tier, starts its workers. Resolves once they are being
   * started (their states: workers() and the 'worker' event). */
  async start(): Promise<void> {
    const { log } = this.o;
    const { ctx, status } = await openEnforcement({
      stateDir: this.o.stateDir,
      install: this.o.install,
      identities: this.o.identities,
      runcPath: this.o.runcPath,
      withoutEbpf: this.o.withoutEbpf,
    });
    this.ctx = ctx;
    this.status = status;
    this.tiers = this.o.policy.tiers.map((t) => decideTier(t, status));
    this.totals = new CounterTotals(new Map([...this.o.policy.tiers.map((t) => [t.name, t.mode] as const), ...(this.o.frontDoor ? [[FRONT_DOOR, this.o.frontDoor.mode] as const] : [])]));

    const local = this.o.policy.tiers.filter((t) => this.tierState(t.name)?.status === 'running');
    for (const t of local) this.profiles.set(t.name, loadTierProfiles(this.o.profilesDir, t.name, t.readOnly));
    this.announce();

    const layout = stateLayout(this.o.stateDir);
    const dataDir = path.dirname(this.o.db);
    checkDataDir(dataDir, layout);
    const root = process.getuid?.() === 0;
    for (const change of await prepareDataDir(dataDir, root ? this.o.identities : null)) log.info(`database directory: ${change}`);
    if (!ctx && root) {
      // Plain-process workers run as the worker identity and see the host's directories.
      for (const id of [this.o.identities.reader, this.o.identities.writer]) {
        for (const p of [this.o.db, path.join(this.o.install, 'bin', 'fhirguard')]) {
          const blocked = unsearchableAncestor(p, id);
          if (blocked) throw new Error(`workers (uid ${id.uid}) cannot reach ${p}: ${blocked} is not searchable for them`);
        }
      }
    }
    if (ctx) {
      // Containers left by an agent that died cannot be supervised (runc was their parent).
      for (const c of await ctx.runc.list()) {
        log.warn({ container: c.id }, 'removing a container left by an earlier agent');
        await ctx.runc.delete(c.id);
      }
    }
    if (this.o.image) {
      if (!ctx) throw new Error(`--image runs workers in containers, which this host cannot run: ${status.containers.reason}`);
      await this.o.image.prepare(); // resolved and scanned now; gated before every start
    }
    const cmd = { install: this.o.install, db: this.o.db, logLevel: this.o.workerLogLevel ?? 'info' };
    this.env = {
      ctx,
      cmd,
      ebpf: status.ebpf.ok,
      processIdentities: root ? this.o.identities : null,
      identities: this.o.identities,
      logDir: path.join(this.o.stateDir, 'logs'),
      ...(this.o.recordTiers ? { recordTiers: new Set(this.o.recordTiers) } : {}),
      policy: this.o.policy,
      stateDir: this.o.stateDir,
      log,
    };
    if (this.o.image && local.some((t) => t.server)) throw new Error('--image runs reference workers from an image; tiers with a server: block run what their policy names');
    for (const t of local) {
      const a = { profilesDir: this.o.profilesDir, profiles: this.profiles.get(t.name)!, ...(this.o.image ? { image: this.o.image } : {}), ...(this.o.trust ? { trust: this.o.trust } : {}) };
      this.artifacts.set(t.name, a);
    }

    // Cgroups are host-wide: workers of agents on other state directories must not share them.
    this.instance = createHash('sha256').update(path.resolve(this.o.stateDir)).digest('hex').slice(0, 6);
    for (const t of local) {
      const launcher = launcherOf(this.env, t, this.artifacts.get(t.name)!);
      for (let i = 0; i < t.workers; i++) this.supervisors.push(await this.newWorker(t, `${t.name}-${i}`, launcher));
    }
    // Read-only workers need the database a writing worker creates: writers go first, and
    // readers once one of them is ready (in the background: the API answers meanwhile).
    const writers = this.supervisors.filter((s) => !s.slot.tier.readOnly);
    const readers = this.supervisors.filter((s) => s.slot.tier.readOnly);
    writers.forEach((s) => s.start());
    const startReaders = (): void => {
      if (!this.stopping) readers.forEach((s) => s.start());
    };
    // An operator's server's read tier needs its schema, which its write tier makes at first start.
    const serversFirst = local.some((t) => t.server);
    if (writers.length && readers.length && (serversFirst || !existsSync(this.o.db))) {
      const wait = Math.max(120_000, ...writers.map((s) => s.slot.startTimeoutMs ?? 0));
      // Readers go once a writer is ready, or once every writer's first start crashed: a
      // writer that cannot start does not hold them back. A refused writer (a failed check
      // that refuses the readers too) still does. Every wait settles (a wait that lost the
      // race must not reject unheard).
      const settled = (p: Promise<unknown>): Promise<boolean> =>
        p.then(
          () => true,
          () => false,
        );
      const ready = writers.map((s) => settled(s.until(['ready', 'serving'], wait)));
      const failed = settled(Promise.all(writers.map((s) => s.until(['crashed'], wait))));
      void Promise.race([...ready, failed]).then((ok) => {
        if (!ok) log.error('no writing worker became ready; starting the read-only workers anyway');
        startReaders();
      });
    } else startReaders();
  }

  /**
   * Starts the proxy confined (front-door.ts), once the API it reads is served. Its profiles
   * are its own: borrowing a worker's would kill it at its first network socket.
   */
  startFrontDoor(): void {
    const fd = this.o.frontDoor;
    if (!fd || this.stopping) return;
    const root = process.getuid?.() === 0;
    // The proxy is fhirguard's own: a profiles directory made for an operator's server
    // (examples/hapi/profiles) need not carry its profiles; the shipped ones then apply.
    const shipped = path.join(this.o.install, 'profiles');
    const dir = [this.o.profilesDir, shipped].find((d) => existsSync(seccompProfilePath(d, FRONT_DOOR)));
    if (this.ctx && !dir) {
      throw new Error(`no profiles for the front door in ${this.o.profilesDir} or ${shipped} (seccomp/${FRONT_DOOR}.json, ebpf/${FRONT_DOOR}.json)`);
    }
    this.frontDoorProfiles = this.ctx && dir ? loadTierProfiles(dir, FRONT_DOOR, true) : null;
    this.frontDoor = new FrontDoor({
      args: fd.args,
      policy: this.o.policy,
      policyFile: fd.policyFile,
      agentSocket: fd.agentSocket,
      stateDir: this.o.stateDir,
      install: this.o.install,
      identities: this.o.identities,
      ctx: root ? this.ctx : null,
      profiles: this.frontDoorProfiles,
      mode: fd.mode,
      ebpf: this.status.ebpf.ok,
      instance: this.instance,
      logLevel: this.o.workerLogLevel ?? 'info',
      log: this.o.log.child({ frontDoor: true }),
      onRetired: (c) => this.totals.retire(FRONT_DOOR, c),
    });
    this.frontDoor.start();
  }

  /** A supervised worker slot (not started): its socket directory, cgroup name, events. */
  private async newWorker(t: TierConfig, id: string, launcher: WorkerLauncher, onRetired?: (c: CgroupCounters) => void): Promise<WorkerSupervisor> {
    const socketDir = path.join(stateLayout(this.o.stateDir).sockets, t.name, id);
    await prepareSocketDir(socketDir, process.getuid?.() === 0 ? socketDirOwner(this.o.identities, t.readOnly) : null);
    const slot = {
      tier: t,
      id,
      socketDir,
      socketPath: path.join(socketDir, 'worker.sock'),
      cgroupName: `${id}-${this.instance}`,
      // A busy JVM answers its health check slower than the reference worker: a slow answer
      // under load (a rollout's new JVM starting on the same cores) is not a dead server.
      ...(t.server ? { health: t.server.health, healthTimeoutMs: SERVER_HEALTH_TIMEOUT_MS, startTimeoutMs: t.server.startTimeoutMs, logFile: serverLogFile(this.env.logDir, id) } : {}),
    };
    const sup = new WorkerSupervisor(slot, launcher, {
      log: this.o.log,
      ...this.o.supervisor,
      onSeccompKill: (names) => this.totals.seccompKill(t.name, names),
      onRetired: (c) => {
        this.totals.retire(t.name, c);
        this.o.onRetired?.(t.name, c);
        onRetired?.(c);
      },
    });
    sup.on('change', (info: WorkerInfo) => this.emit('worker', info));
    sup.on('refused', (r: { reason: string }) => {
      const counts = this.startRefusals.get(t.name) ?? {};
      counts[r.reason] = (counts[r.reason] ?? 0) + 1;
      this.startRefusals.set(t.name, counts);
    });
    return sup;
  }

  /**
   * Replaces a tier's workers with new ones from new artifacts, without failing a request
   * (rollout.ts says how); one rollout per tier at a time. Resolves with the outcome.
   */
  /** Reads the policy file again and, when it passes the agent's checks and the front door's, routes by it (policy-reload.ts). */
  reloadPolicy(): Promise<ReloadAnswer> {
    this.policyReload ??= new AgentPolicyReload({
      current: () => this.o.policy,
      commit: (next) => {
        this.o.policy = next;
      },
      ...(this.o.trust ? { trust: this.o.trust } : {}),
      ...(this.o.resign ? { resign: this.o.resign } : {}),
      ...(this.frontDoor ? { frontDoor: () => this.frontDoor!.reload() } : this.o.proxyAdmin ? { frontDoor: () => askReload(hostPort(this.o.proxyAdmin!), '/reload') } : {}),
      confinedEgress: this.frontDoor?.confinement === 'container',
      log: this.o.log,
    });
    return this.policyReload.reload();
  }

  async rollout(req: RolloutRequest, say: (p: RolloutProgress) => void): Promise<RolloutResult> {
    const fail = (reason: string): RolloutResult => ({ type: 'result', ok: false, tier: req.tier, reason, workers: [], runs: '', durationMs: 0 });
    const tier = this.o.policy.tiers.find((t) => t.name === req.tier);
    if (!tier) return fail(`no tier ${req.tier} in the policy (tiers: ${this.o.policy.tiers.map((t) => t.name).join(', ')})`);
    const cur = this.artifacts.get(tier.name);
    if (!cur) return fail(`tier ${tier.name} has no workers of the agent's to roll (${this.tierState(tier.name)?.reason ?? 'not running'})`);
    if (this.stopping) return fail('the agent is stopping');
    const r = this.rollouts.get(tier.name) ?? { generation: 0, running: false };
    if (r.running) return fail(`a rollout of tier ${tier.name} is already running`);
    r.running = true;
    this.rollouts.set(tier.name, r);
    try {
      return await runRollout(
        {
          log: this.o.log,
          current: (name) => this.supervisors.filter((s) => s.slot.tier.name === name),
          describe: (name) => describeArtifacts(this.artifacts.get(name)!),
          prepare: async (q): Promise<Generation> => {
            const next = await nextArtifacts(this.env, tier, this.artifacts.get(tier.name)!, q);
            const launcher = launcherOf(this.env, tier, next);
            const g = ++r.generation;
            const retired = new Map<string, CgroupCounters[]>();
            const sups: WorkerSupervisor[] = [];
            for (let i = 0; i < tier.workers; i++) {
              const id = `${tier.name}-g${g}-${i}`;
              sups.push(await this.newWorker(tier, id, launcher, (c) => retired.set(id, [...(retired.get(id) ?? []), c])));
            }
            // Listed (and reported to the proxy) from now on, next to the old ones.
            this.supervisors.push(...sups);
            return {
              supervisors: sups,
              describe: describeArtifacts(next),
              retired,
              adopt: () => {
                this.artifacts.set(tier.name, next);
                this.profiles.set(tier.name, next.profiles);
              },
            };
          },
          forget: async (sups) => {
            this.supervisors = this.supervisors.filter((s) => !sups.includes(s));
            for (const s of sups) await rm(s.slot.socketDir, { recursive: true, force: true }).catch(() => undefined);
          },
        },
        req,
        say,
      );
    } finally {
      r.running = false;
    }
  }

  /** The loud part of degraded mode: one line per tier that is less confined than it could be. */
  private announce(): void {
    const { log } = this.o;
    const s = this.status;
    if (!s.containers.ok) {
      log.error(`ENFORCEMENT DEGRADED: workers run as plain processes, without containers, seccomp or eBPF: ${s.containers.reason}`);
    } else if (!s.ebpf.ok) {
      log.error(`ENFORCEMENT DEGRADED: no eBPF policy (no serve phase, no syscall counters): ${s.ebpf.reason}`);
    }
    for (const t of this.tiers) {
      if (t.status === 'refused') log.error({ tier: t.tier }, `tier ${t.tier} REFUSED: ${t.reason}; its requests will fail with 503`);
      else if (t.status === 'running') {
        const off = Object.entries(t.mechanisms).filter(([, m]) => !m.active);
        if (off.length) log.warn({ tier: t.tier, inactive: Object.fromEntries(off.map(([k, m]) => [k, m.reason])) }, `tier ${t.tier}: enforcement not fully active`);
        else log.info({ tier: t.tier }, `tier ${t.tier}: seccomp, eBPF, read-only mounts and network namespace active`);
      }
    }
  }

  private tierState(name: string): TierEnforcement | undefined {
    return this.tiers.find((t) => t.tier === name);
  }

  workers(): WorkerInfo[] {
    return this.supervisors.map((s) => s.info());
  }

  /**
   * Per tier: how it is enforced, its profile, its signed-statement check (null when the
   * agent checks none) and every refused start attempt so far by reason (either check).
   */
  enforcement(): {
    degraded: boolean;
    tiers: Array<TierEnforcement & { profile: ProfileInfo | null; trust: TierTrust | null; startRefusals: Record<string, number> }>;
    frontDoor: (FrontDoorInfo & { mode: Exclude<FrontDoorMode, 'record'>; profile: ProfileInfo | null }) | null;
  } {
    const fd = this.frontDoor;
    return {
      degraded: !this.status.containers.ok || !this.status.ebpf.ok,
      frontDoor: fd ? { ...fd.info(), mode: this.o.frontDoor!.mode, profile: this.frontDoorProfiles ? profileInfoOf(FRONT_DOOR, this.frontDoorProfiles) : null } : null,
      tiers: this.tiers.map((t) => ({
        ...t,
        profile: this.profileInfo(t.tier),
        trust: t.status === 'running' ? (this.artifacts.get(t.tier)?.trust?.report(t.tier) ?? null) : null,
        startRefusals: { ...this.startRefusals.get(t.tier) },
      })),
    };
  }

  private profileInfo(tier: string): ProfileInfo | null {
    const p = this.profiles.get(tier);
    return p ? profileInfoOf(tier, p) : null;
  }

  async counters(): Promise<CountersReport> {
    const tiers = [...this.tiers.filter((t) => t.status === 'running').map((t) => t.tier), ...(this.frontDoor ? [FRONT_DOOR] : [])];
    const bpf = this.ctx?.bpf;
    if (!bpf) return { available: false, reason: this.status.ebpf.reason, eventsDropped: 0, tiers: this.totals.snapshot(tiers, []) };
    const all = await bpf.counters();
    const byCgid = new Map(all.cgroups.map((c) => [c.cgid, c]));
    const live = this.supervisors.flatMap((s) => {
      const c = s.current?.cgid ? byCgid.get(s.current.cgid) : undefined;
      return c ? [{ tier: s.slot.tier.name, counters: c }] : [];
    });
    const door = await this.frontDoor?.counters();
    if (door) live.push({ tier: FRONT_DOOR, counters: door });
    return { available: true, eventsDropped: all.eventsDropped, tiers: this.totals.snapshot(tiers, live) };
  }

  supervisor(id: string): WorkerSupervisor | undefined {
    return this.supervisors.find((s) => s.slot.id === id);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // The door closes first: no request comes in for workers that are going.
    await this.frontDoor?.stop();
    await Promise.all(this.supervisors.map((s) => s.stop()));
  }
}

function profileInfoOf(tier: string, p: TierProfiles): ProfileInfo {
  return {
    tier,
    digest: p.digest,
    seccompFile: p.seccompFile,
    ebpfFile: p.ebpfFile,
    seccompAllowed: p.seccompAllowed.length,
    serveAllowed: p.ebpf.serve.length,
    ...(p.borrowedFrom ? { borrowedFrom: p.borrowedFrom } : {}),
  };
}
