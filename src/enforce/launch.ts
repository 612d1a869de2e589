// Starting one process under a tier's whole confinement: the container (mounts,
// namespaces, no capabilities, limits, seccomp) and, where the kernel allows, the tier's
// eBPF policy registered on the container's cgroup in boot phase before its process runs.
// The agent starts workers through this; `fhirguard exec` starts operators' commands.

import type { StdioOptions } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BpfAction, BpfEnforcer, CgroupCounters, EgressRule, Phase } from './bpf';
import type { ContainerSpec } from './oci-bundle';
import { tierContainerSpec } from './confine';
import { Container } from './container';
import { imageContainerSpec, type ImageRoot } from '../image/container';
import { bpfPolicyOf, type EbpfProfile } from './ebpf-profile';
import { tierIdentity, type Identities } from './identities';
import type { StateLayout } from './layout';
import type { Runc } from './runc';
import type { SeccompMode } from './seccomp';
import type { TierProfiles } from './tier-profiles';

export interface EnforcementContext {
  runc: Runc;
  layout: StateLayout;
  install: string;
  identities: Identities;
  /** null where eBPF cannot run (the reason is the caller's to report). */
  bpf: BpfEnforcer | null;
  /** The cgroup v2 mount runc's cgroups appear under (e.g. /sys/fs/cgroup/unified). */
  cgroupV2Mount: string;
}

export interface LaunchRequest {
  tier: string;
  /** Data directory mounted read-only. */
  readOnly: boolean;
  mode: 'enforce' | 'audit' | 'record';
  /** null: no seccomp filter and no eBPF policy (the benchmark's unconfined baseline). */
  profiles: TierProfiles | null;
  /** Register the eBPF policy (when ctx.bpf is there). */
  ebpf: boolean;
  id: string;
  /** The cgroup's last component (/fhirguard/<tier>/<cgroupName>); default the id. Two agents
   * on one host give their workers different names, or they would share cgroups. */
  cgroupName?: string;
  dataDir: string;
  socketDir: string;
  args: string[];
  env?: string[];
  extraReadOnly?: string[];
  stdio: StdioOptions;
  /** Run from this unpacked worker image instead of a root of host bind mounts. */
  image?: ImageRoot;
}

export class ConfinedProcess {
  private forgotten = false;

  constructor(
    readonly container: Container,
    readonly ctx: EnforcementContext,
    /** The container's cgroup v2 directory. */
    readonly cgroupDir: string,
    /** The cgroup's id when an eBPF policy is registered on it (counters outlive the directory). */
    readonly cgid: string | null,
  ) {}

  /** True when the tier's eBPF policy is registered on this container's cgroup. */
  get ebpf(): boolean {
    return this.cgid !== null;
  }

  /** One map update: boot → serve (tighter), or → shutdown before a graceful stop. */
  async setPhase(phase: Phase): Promise<void> {
    if (this.cgid !== null && this.ctx.bpf) await this.ctx.bpf.setPhase(this.cgroupDir, phase);
  }

  /**
   * Stops the container: SIGTERM, SIGKILL after graceMs, and when runc cannot reach it any
   * more (its state gone), SIGKILL to every process of its cgroup (cgroup.kill).
   */
  async stop(graceMs: number): Promise<void> {
    const c = this.container;
    const gone = c.stop(graceMs);
    const late = new Promise<'late'>((resolve) => {
      const t = setTimeout(() => resolve('late'), graceMs + 5000);
      void c.exited.then(() => clearTimeout(t));
    });
    if ((await Promise.race([gone, late])) === 'late') {
      await writeFile(path.join(this.cgroupDir, 'cgroup.kill'), '1').catch(() => undefined);
      await gone;
    }
  }

  /** This cgroup's eBPF counters, or null without eBPF. */
  async counters(): Promise<CgroupCounters | null> {
    if (this.cgid === null || !this.ctx.bpf || this.forgotten) return null;
    const c = await this.ctx.bpf.counters(this.cgid);
    return c.cgroups[0] ?? null;
  }

  /** Drops the cgroup's eBPF state after the container is gone (returns its last counters). */
  async forget(): Promise<CgroupCounters | null> {
    if (this.cgid === null || !this.ctx.bpf || this.forgotten) return null;
    const last = (await this.ctx.bpf.counters(this.cgid)).cgroups[0] ?? null;
    this.forgotten = true;
    await this.ctx.bpf.forget(this.cgid);
    return last;
  }
}

export function bpfActionOf(mode: LaunchRequest['mode']): BpfAction {
  return mode;
}

export async function launchConfined(ctx: EnforcementContext, req: LaunchRequest): Promise<ConfinedProcess> {
  const seccompMode: SeccompMode = req.mode;
  const tierSpec = tierContainerSpec(
    { tier: req.tier, readOnly: req.readOnly, seccomp: req.profiles?.seccomp ?? null, seccompMode },
    {
      install: ctx.install,
      dataDir: req.dataDir,
      socketDir: req.socketDir,
      uid: tierIdentity(ctx.identities, req.readOnly).uid,
      gid: tierIdentity(ctx.identities, req.readOnly).gid,
      extraReadOnly: req.extraReadOnly,
    },
    req.id,
    { args: req.args, env: req.env },
    undefined,
    req.cgroupName ?? req.id,
  );
  const spec = req.image ? imageContainerSpec(tierSpec, req.image, req) : tierSpec;
  return startConfined(ctx, { id: req.id, spec, stdio: req.stdio, mode: req.mode, ebpf: req.ebpf ? (req.profiles?.ebpf ?? null) : null });
}

export interface ConfinedStart {
  id: string;
  spec: ContainerSpec;
  stdio: StdioOptions;
  mode: LaunchRequest['mode'];
  /** The eBPF profile to register on the container's cgroup in boot phase (when ctx.bpf is there), or null. */
  ebpf: EbpfProfile | null;
  /** Overrides the profile's egress allow-list (the proxy's comes from the policy's upstreams). */
  egress?: readonly EgressRule[];
}

/** Starts a container from its spec, its cgroup registered with the eBPF policy before its process runs. */
export async function startConfined(ctx: EnforcementContext, o: ConfinedStart): Promise<ConfinedProcess> {
  const cgroupDir = path.join(ctx.cgroupV2Mount, o.spec.cgroupsPath);
  const bpf = o.ebpf ? ctx.bpf : null;
  const profile = o.ebpf;
  let cgid: string | null = null;
  const container = await Container.start({
    runc: ctx.runc,
    id: o.id,
    bundleDir: path.join(ctx.layout.bundles, o.id),
    spec: o.spec,
    stdio: o.stdio,
    ...(bpf && profile
      ? {
          beforeStart: async () => {
            const policy = bpfPolicyOf(profile, bpfActionOf(o.mode));
            cgid = (await bpf.setPolicy(cgroupDir, o.egress ? { ...policy, egress: o.egress } : policy)).cgid;
          },
        }
      : {}),
  });
  return new ConfinedProcess(container, ctx, cgroupDir, cgid);
}
