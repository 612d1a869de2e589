// What the node agent does with each pod of its node that carries the tier label: the pod's
// worker container gets its tier's eBPF policy on its cgroup(s), boot phase first, serve once
// the pod is ready, shutdown once the pod is being deleted; the policy is dropped (its last
// counters kept in the tier's totals) when the container is replaced or ends, or when the pod
// is gone and so are its cgroups (a pod whose label is removed keeps its policy while its
// container runs: relabelling must not free a worker). A pod that
// cannot be adopted (a tier the policy does not name, a tier without its eBPF profile, no such
// container, no cgroup, a loader error) is refused loudly: an error line per pod and reason,
// and fhirguard_adoption_refusals_total{reason}. Reports the same shapes as the agent API
// (counters, workers, enforcement), so the enforcement metrics read them unchanged.

import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { BpfEnforcer, BpfEvent, CgroupCounters, Phase } from '../../enforce/bpf';
import { bpfPolicyOf, ebpfProfilePath } from '../../enforce/ebpf-profile';
import { loadTierProfiles, type TierProfiles } from '../../enforce/tier-profiles';
import type { Policy, TierConfig } from '../../policy';
import type { CountersReport, EnforcementReport, ProfileInfo } from '../../agent-api/client';
import { CounterTotals } from '../counters';
import type { Mechanism, MechanismState } from '../../agent-api/messages';
import type { PodCgroups } from './cgroups';
import { podName, readyToServe, runningContainer, type Pod } from './pods';

export const REFUSAL_REASONS = ['unknown-tier', 'no-profile', 'bad-profile', 'no-container', 'no-cgroup', 'ebpf-error'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface ProfileProblem {
  reason: 'no-profile' | 'bad-profile';
  message: string;
}

/** Each tier's profiles, or why it has none: a tier without its own eBPF profile borrows
 * nothing here (its pods are refused), since nothing else would say the pod is unconfined. */
export function loadNodeProfiles(profilesDir: string, policy: Policy): Map<string, TierProfiles | ProfileProblem> {
  const out = new Map<string, TierProfiles | ProfileProblem>();
  for (const t of policy.tiers) {
    const ebpfFile = ebpfProfilePath(profilesDir, t.name);
    if (!existsSync(ebpfFile)) {
      out.set(t.name, { reason: 'no-profile', message: `tier ${t.name} has no eBPF profile (${ebpfFile})` });
      continue;
    }
    try {
      // Its own eBPF profile is there, so nothing is borrowed.
      out.set(t.name, loadTierProfiles(profilesDir, t.name, t.readOnly));
    } catch (err) {
      out.set(t.name, { reason: 'bad-profile', message: `tier ${t.name}: ${(err as Error).message}` });
    }
  }
  return out;
}

const isProblem = (p: TierProfiles | ProfileProblem | undefined): p is ProfileProblem | undefined => !p || 'reason' in p;

export interface AdopterOptions {
  bpf: BpfEnforcer;
  policy: Policy;
  profiles: ReadonlyMap<string, TierProfiles | ProfileProblem>;
  cgroups: PodCgroups;
  /** The cgroup v2 mount (cgroups are reported relative to it). */
  cgroup2Mount: string;
  labelKey: string;
  container: string;
  nodeName: string;
  log: Logger;
  onRefused(reason: RefusalReason): void;
  /** Reconciles a running container's cgroup may stay missing before the pod is refused. */
  cgroupPatience?: number;
}

/** A labelled pod's worker container, for fhirguard_workers and the restart counter. */
export interface NodeWorker {
  tier: string;
  /** <pod name>/<container> */
  id: string;
  state: 'starting' | 'serving' | 'draining' | 'crashed' | 'refused';
  restarts: number;
  /** The first cgroup of the container, relative to the cgroup v2 mount. */
  cgroup: string | null;
  since: string;
  lastExit: { code: number; signal: string | null; at: string } | null;
  refusal: { reason: string; message: string } | null;
}

interface Adopted {
  /** The runtime's container id. */
  id: string;
  tier: TierConfig;
  cgroups: { dir: string; cgid: string }[];
  phase: Phase;
  since: Date;
}

interface PodEntry {
  pod: Pod;
  adopted: Adopted | null;
  refusal: { reason: RefusalReason; message: string } | null;
  cgroupMisses: number;
  /** No longer among the watched pods (deleted, or its label removed) while its container's
   * cgroup still exists: the policy stays on it until the cgroup is gone. */
  left: boolean;
}

export class Adopter {
  private readonly entries = new Map<string, PodEntry>();
  private readonly totals: CounterTotals;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: AdopterOptions) {
    this.totals = new CounterTotals(new Map(o.policy.tiers.map((t) => [t.name, t.mode])));
  }

  /** Runs reconciles one at a time, in the order the pod events came. */
  private enqueue(job: () => Promise<void>): Promise<void> {
    this.queue = this.queue
      .then(job)
      .then(() => this.sweep())
      .catch((err: Error) => this.o.log.error({ err }, `adopting pods: ${err.message}`));
    return this.queue;
  }

  private alive(a: Adopted): boolean {
    return a.cgroups.some((c) => existsSync(c.dir));
  }

  /** Retires the pods that left once their containers' cgroups are gone. */
  private async sweep(): Promise<void> {
    for (const [uid, e] of this.entries) {
      if (!e.left || (e.adopted && this.alive(e.adopted))) continue;
      this.entries.delete(uid);
      await this.retire(e, 'the pod is gone');
    }
  }

  update(pod: Pod): Promise<void> {
    return this.enqueue(() => this.reconcile(pod));
  }

  remove(pod: Pod): Promise<void> {
    return this.enqueue(async () => {
      const e = this.entries.get(pod.metadata.uid);
      if (!e) return;
      e.left = true;
      e.pod = pod;
      const a = e.adopted;
      // Its container runs on: leaving the selectors must not free a worker (sweep() retires it).
      if (a && this.alive(a) && !pod.metadata.deletionTimestamp) {
        this.o.log.error(
          { pod: podName(pod), tier: a.tier.name },
          `pod ${podName(pod)} is no longer selected (label ${this.o.labelKey} removed?) while its container runs: tier ${a.tier.name}'s policy stays on it until the container ends`,
        );
      }
    });
  }

  /** Reconciles every pod again (retries cgroups that were not there yet). */
  resync(): Promise<void> {
    return this.enqueue(async () => {
      for (const e of [...this.entries.values()]) if (!e.left) await this.reconcile(e.pod);
    });
  }

  /** Resolves once every event so far has been handled. */
  idle(): Promise<void> {
    return this.enqueue(async () => undefined);
  }

  private refuse(e: PodEntry, reason: RefusalReason, message: string): void {
    if (e.refusal?.message === message) return;
    e.refusal = { reason, message };
    this.o.log.error({ pod: podName(e.pod), reason }, `pod ${podName(e.pod)} NOT ADOPTED: ${message}; its worker runs without fhirguard's eBPF policy`);
    this.o.onRefused(reason);
  }

  private tierOf(pod: Pod): { value: string | undefined; tier: TierConfig | undefined } {
    const value = pod.metadata.labels?.[this.o.labelKey];
    return { value, tier: this.o.policy.tiers.find((t) => t.name === value) };
  }

  private async reconcile(pod: Pod): Promise<void> {
    const { log, container } = this.o;
    const uid = pod.metadata.uid;
    const e = this.entries.get(uid) ?? { pod, adopted: null, refusal: null, cgroupMisses: 0, left: false };
    e.pod = pod;
    e.left = false;
    this.entries.set(uid, e);
    const name = podName(pod);
    const { value, tier } = this.tierOf(pod);
    const run = runningContainer(pod, container);

    // The container ended or was replaced: its cgroup's policy goes (its counts stay).
    if (e.adopted && e.adopted.id !== run?.id) await this.retire(e, run ? 'the container was replaced' : 'the container is not running');
    if (e.adopted && tier && e.adopted.tier.name !== tier.name) await this.retire(e, `the pod's tier changed to ${tier.name}`);
    if (e.adopted && !tier) {
      // Relabelling a running worker must not free it: it keeps the policy it has.
      this.refuse(e, 'unknown-tier', `label ${this.o.labelKey}=${JSON.stringify(value ?? '')} names no tier of the policy; keeping tier ${e.adopted.tier.name}'s policy`);
    }
    if (!e.adopted) {
      if (!tier) {
        const tiers = this.o.policy.tiers.map((t) => t.name).join(', ');
        return this.refuse(e, 'unknown-tier', `label ${this.o.labelKey}=${JSON.stringify(value ?? '')} names no tier of the policy (tiers: ${tiers})`);
      }
      const profiles = this.o.profiles.get(tier.name);
      if (isProblem(profiles)) return this.refuse(e, profiles?.reason ?? 'no-profile', profiles?.message ?? `tier ${tier.name} has no profiles`);
      if (!pod.spec.containers.some((c) => c.name === container)) {
        return this.refuse(e, 'no-container', `it has no container named ${container} (containers: ${pod.spec.containers.map((c) => c.name).join(', ')})`);
      }
      if (!run) return;
      const dirs = this.o.cgroups.containerDirs(uid, run.id);
      if (!dirs) {
        if (++e.cgroupMisses >= (this.o.cgroupPatience ?? 3)) {
          this.refuse(e, 'no-cgroup', `no cgroup of container ${run.id} under ${this.o.cgroups.root}`);
        }
        return;
      }
      e.cgroupMisses = 0;
      e.adopted = { id: run.id, tier, cgroups: [], phase: 'boot', since: new Date() };
      try {
        await this.register(e.adopted, dirs, profiles);
      } catch (err) {
        await this.retire(e, 'registering its policy failed');
        return this.refuse(e, 'ebpf-error', `setting tier ${tier.name}'s eBPF policy failed: ${(err as Error).message}`);
      }
      e.refusal = null;
      log.info({ pod: name, tier: tier.name, container: run.id, cgroups: e.adopted.cgroups.map((c) => this.rel(c.dir)), phase: e.adopted.phase }, `pod ${name} adopted: tier ${tier.name}`);
    } else {
      // A runtime may make the container's nested cgroups after its own.
      const dirs = this.o.cgroups.containerDirs(uid, e.adopted.id) ?? [];
      const fresh = dirs.filter((d) => !e.adopted!.cgroups.some((c) => c.dir === d));
      if (fresh.length) await this.register(e.adopted, fresh, this.o.profiles.get(e.adopted.tier.name) as TierProfiles);
    }

    const a = e.adopted;
    if (pod.metadata.deletionTimestamp && a.phase !== 'shutdown') await this.phase(e, 'shutdown');
    else if (a.phase === 'boot' && readyToServe(pod, container)) await this.phase(e, 'serve');
  }

  /** Registers cgroups with the tier's policy, keeping the phase of one already registered
   * (an agent restarted under a serving worker does not loosen it back to boot). */
  private async register(a: Adopted, dirs: string[], profiles: TierProfiles): Promise<void> {
    const { phase: _boot, ...policy } = bpfPolicyOf(profiles.ebpf, a.tier.mode);
    for (const dir of dirs) {
      const r = await this.o.bpf.setPolicy(dir, a.cgroups.length ? { ...policy, phase: a.phase } : policy);
      if (!a.cgroups.length) a.phase = r.phase;
      a.cgroups.push({ dir, cgid: r.cgid });
    }
  }

  private async phase(e: PodEntry, phase: Phase): Promise<void> {
    const a = e.adopted!;
    try {
      for (const c of a.cgroups) await this.o.bpf.setPhase(c.cgid, phase);
    } catch (err) {
      this.o.log.error({ err, pod: podName(e.pod) }, `pod ${podName(e.pod)}: switching to the ${phase} phase failed: ${(err as Error).message}`);
      return;
    }
    a.phase = phase;
    a.since = new Date();
    this.o.log.info({ pod: podName(e.pod), tier: a.tier.name, phase }, `pod ${podName(e.pod)}: ${phase} phase`);
  }

  /** Drops the adopted container's policy; its last counters go to the tier's totals. */
  private async retire(e: PodEntry, why: string): Promise<void> {
    const a = e.adopted;
    if (!a) return;
    const last: CgroupCounters[] = [];
    for (const c of a.cgroups) {
      const got = await this.o.bpf.counters(c.cgid).catch(() => null);
      if (got?.cgroups[0]) last.push(got.cgroups[0]);
    }
    // In one step for a concurrent scrape: live until here, in the totals from here on.
    for (const c of last) this.totals.retire(a.tier.name, c);
    e.adopted = null;
    for (const c of a.cgroups) {
      await this.o.bpf.forget(c.cgid).catch((err: Error) => this.o.log.warn({ err, cgid: c.cgid }, `forgetting cgroup ${c.cgid}: ${err.message}`));
    }
    this.o.log.info({ pod: podName(e.pod), tier: a.tier.name, container: a.id }, `pod ${podName(e.pod)}: policy retired (${why})`);
  }

  private rel(dir: string): string {
    return '/' + path.relative(this.o.cgroup2Mount, dir);
  }

  /** The cgroup ids this agent has registered. */
  adoptedIds(): Set<string> {
    return new Set([...this.entries.values()].flatMap((e) => e.adopted?.cgroups.map((c) => c.cgid) ?? []));
  }

  async counters(): Promise<CountersReport> {
    const all = await this.o.bpf.counters();
    const byId = new Map(all.cgroups.map((c) => [c.cgid, c]));
    const live = [...this.entries.values()].flatMap((e) => {
      const a = e.adopted;
      return a ? a.cgroups.flatMap((c) => (byId.has(c.cgid) ? [{ tier: a.tier.name, counters: byId.get(c.cgid)! }] : [])) : [];
    });
    return {
      available: true,
      eventsDropped: all.eventsDropped,
      tiers: this.totals.snapshot(
        this.o.policy.tiers.map((t) => t.name),
        live,
      ),
    };
  }

  workers(): NodeWorker[] {
    const out: NodeWorker[] = [];
    for (const e of this.entries.values()) {
      const { tier } = this.tierOf(e.pod);
      const t = e.adopted?.tier ?? tier;
      if (!t) continue; // no tier to count it under: fhirguard_adoption_refusals_total has it
      const status = e.pod.status?.containerStatuses?.find((c) => c.name === this.o.container);
      const ended = status?.lastState?.terminated ?? status?.state?.terminated;
      const a = e.adopted;
      const state: NodeWorker['state'] = a ? ({ boot: 'starting', serve: 'serving', shutdown: 'draining' } as const)[a.phase] : e.refusal ? 'refused' : ended ? 'crashed' : 'starting';
      out.push({
        tier: t.name,
        id: `${e.pod.metadata.name}/${this.o.container}`,
        state,
        restarts: status?.restartCount ?? 0,
        cgroup: a?.cgroups[0] ? this.rel(a.cgroups[0].dir) : null,
        since: (a?.since ?? new Date()).toISOString(),
        lastExit: ended ? { code: ended.exitCode, signal: ended.signal ? String(ended.signal) : null, at: ended.finishedAt ?? '' } : null,
        refusal: e.refusal,
      });
    }
    return out;
  }

  enforcement(): EnforcementReport {
    return {
      degraded: false,
      tiers: this.o.policy.tiers.map((t) => {
        const p = this.o.profiles.get(t.name);
        const pods = [...this.entries.values()].filter((e) => e.adopted?.tier.name === t.name).map((e) => e.pod);
        const base = { tier: t.name, mode: t.mode, enforcement: t.enforcement, confinement: 'container' as const, mechanisms: this.mechanisms(t, pods) };
        if (isProblem(p)) return { ...base, status: 'refused' as const, reason: p?.message ?? 'no profiles', profile: null };
        return { ...base, status: 'running' as const, profile: profileInfo(t.name, p) };
      }),
    };
  }

  /** Per mechanism, what the adopted pods of a tier on this node have: eBPF from the agent, the
   * rest as their pod specs declare it (the kubelet applies those). */
  private mechanisms(t: TierConfig, pods: Pod[]): Record<Mechanism, MechanismState> {
    const none = { active: false, reason: `no pod of tier ${t.name} is adopted on node ${this.o.nodeName}` };
    if (!pods.length) return { seccomp: none, ebpf: none, mount_ro: none, netns: none };
    const spec = (p: Pod) => p.spec.containers.find((c) => c.name === this.o.container)!;
    const firstFailing = (ok: (p: Pod) => boolean): Pod | undefined => pods.find((p) => !ok(p));
    const judge = (ok: (p: Pod) => boolean, yes: string, no: (p: Pod) => string): MechanismState => {
      const bad = firstFailing(ok);
      return bad ? { active: false, reason: no(bad) } : { active: true, reason: yes };
    };
    const seccompOf = (p: Pod) => spec(p).securityContext?.seccompProfile ?? p.spec.securityContext?.seccompProfile;
    const pvcs = (p: Pod) => new Set((p.spec.volumes ?? []).filter((v) => v.persistentVolumeClaim).map((v) => v.name));
    return {
      seccomp: judge(
        (p) => seccompOf(p)?.type === 'Localhost',
        'a Localhost profile on every worker container (installed by the kubelet)',
        (p) => `pod ${podName(p)} runs its ${this.o.container} container under ${seccompOf(p)?.type ?? 'no'} seccomp profile, not the tier's Localhost one`,
      ),
      ebpf:
        t.mode === 'audit'
          ? { active: false, reason: 'audit mode: violations are counted, not killed' }
          : { active: true, reason: `boot/serve phase policy on the cgroups of ${pods.length} pod(s), violations killed` },
      mount_ro: judge(
        (p) => spec(p).securityContext?.readOnlyRootFilesystem === true && (!t.readOnly || (spec(p).volumeMounts ?? []).every((m) => !pvcs(p).has(m.name) || m.readOnly === true)),
        t.readOnly ? 'read-only root and read-only data volumes (pod spec)' : 'read-only root (pod spec)',
        (p) => `pod ${podName(p)}: ${spec(p).securityContext?.readOnlyRootFilesystem === true ? 'a data volume is mounted writable' : 'the root filesystem is writable'}`,
      ),
      netns: judge(
        (p) => p.spec.hostNetwork !== true,
        "each pod's own network namespace",
        (p) => `pod ${podName(p)} uses the node's network namespace (hostNetwork)`,
      ),
    };
  }

  /** A violation event, with the pod it came from, for the log. */
  logEvent(ev: BpfEvent): void {
    const e = [...this.entries.values()].find((x) => x.adopted?.cgroups.some((c) => c.cgid === ev.cgid));
    if (!e?.adopted) return;
    const what = ev.kind === 'egress' ? `connection to ${ev.addr}:${ev.port}` : ev.kind === 'write-open' ? `${ev.syscall} for writing` : ev.syscall;
    this.o.log.warn(
      { pod: podName(e.pod), tier: e.adopted.tier.name, kind: ev.kind, syscall: ev.syscall, action: ev.action, phase: ev.phase, pid: ev.pid, comm: ev.comm },
      `pod ${podName(e.pod)}: ${what} outside tier ${e.adopted.tier.name}'s ${ev.phase} policy (${ev.action === 'audit' ? 'counted' : ev.kind === 'egress' ? 'refused' : 'killed'})`,
    );
  }
}

function profileInfo(tier: string, p: TierProfiles): ProfileInfo {
  return { tier, digest: p.digest, seccompFile: p.seccompFile, ebpfFile: p.ebpfFile, seccompAllowed: p.seccompAllowed.length, serveAllowed: p.ebpf.serve.length };
}
