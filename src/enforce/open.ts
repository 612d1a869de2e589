// What confinement this process can give, found once at start: containers need root, runc
// and kernel seccomp; eBPF additionally needs the loader, a kernel that runs fhirguard's
// programs, and the cgroup v2 hierarchy runc also puts containers in. Each "no" carries
// its reason, for the loud degraded-mode log line and GET /enforcement.

import { mkdir } from 'node:fs/promises';
import { BpfEnforcer, probeKernel, type KernelSupport } from './bpf';
import type { EnforcementContext } from './launch';
import type { Identities } from './identities';
import { stateLayout } from './layout';
import { containerBlockers, probeHost, type HostProbe } from './probe';
import { Runc } from './runc';

export interface Availability {
  ok: boolean;
  reason?: string;
}

export interface EnforcementStatus {
  host: HostProbe;
  kernel: KernelSupport | null;
  containers: Availability;
  /** The sys_enter syscall policy (boot/serve phases, counters). */
  ebpf: Availability;
  /** The cgroup connect/sendmsg egress allow-list. */
  egress: Availability;
}

export interface OpenOptions {
  stateDir: string;
  install: string;
  identities: Identities;
  runcPath?: string;
  /** Leave eBPF out even where it would work (the overhead benchmark's "seccomp only"). */
  withoutEbpf?: boolean;
}

export async function openEnforcement(o: OpenOptions): Promise<{ ctx: EnforcementContext | null; status: EnforcementStatus }> {
  const host = await probeHost(o.runcPath);
  const blockers = containerBlockers(host);
  const containers: Availability = blockers.length ? { ok: false, reason: blockers.join('; ') } : { ok: true };
  let kernel: KernelSupport | null = null;
  let ebpf: Availability;
  let egress: Availability;
  if (!containers.ok) {
    ebpf = { ok: false, reason: `no containers to attach to: ${containers.reason}` };
    egress = ebpf;
  } else if (o.withoutEbpf) {
    ebpf = { ok: false, reason: 'left out on request' };
    egress = ebpf;
  } else if (!host.cgroupV2.ok) {
    ebpf = { ok: false, reason: host.cgroupV2.detail };
    egress = ebpf;
  } else {
    kernel = await probeKernel();
    ebpf = kernel.syscallPolicy.available ? { ok: true } : { ok: false, reason: kernel.syscallPolicy.reason };
    egress = kernel.egress.available ? { ok: true } : { ok: false, reason: kernel.egress.reason };
  }

  if (!containers.ok) return { ctx: null, status: { host, kernel, containers, ebpf, egress } };

  const layout = stateLayout(o.stateDir);
  await mkdir(layout.runcRoot, { recursive: true, mode: 0o700 });
  await mkdir(layout.bundles, { recursive: true, mode: 0o700 });
  let bpf: BpfEnforcer | null = null;
  if (ebpf.ok) {
    bpf = new BpfEnforcer();
    try {
      await bpf.load();
    } catch (err) {
      ebpf = { ok: false, reason: `loading the eBPF programs failed: ${(err as Error).message}` };
      egress = ebpf;
      bpf = null;
    }
  }
  const ctx: EnforcementContext = {
    runc: new Runc(host.runc.path!, layout.runcRoot),
    layout,
    install: o.install,
    identities: o.identities,
    bpf,
    cgroupV2Mount: host.cgroupV2.mount ?? '/sys/fs/cgroup/unified',
  };
  return { ctx, status: { host, kernel, containers, ebpf, egress } };
}
