// What the agent can promise each tier, per mechanism, decided once at start from what
// the host offers (GET /enforcement, fhirguard_enforcement_active{tier,mechanism}).
// A mechanism is active when it is applied and blocks; audit mode applies seccomp and eBPF
// without blocking, and says so.

import type { EnforcementStatus } from '../enforce/open';
import type { TierConfig } from '../policy';
import type { Mechanism, MechanismState, TierEnforcement } from '../agent-api/messages';

/** A server that connects out keeps the host's network namespace: its eBPF egress list is then the fence. */
function netnsOf(tier: TierConfig, s: EnforcementStatus, audit: boolean): MechanismState {
  const egress = tier.server?.egress ?? [];
  if (egress.length === 0) return { active: true, reason: 'empty network namespace: the worker serves only its Unix socket' };
  const to = egress.map((e) => e.spec).join(', ');
  if (!s.ebpf.ok) return { active: false, reason: `the server shares the host's network to reach ${to}, and without eBPF nothing limits where it connects` };
  if (audit) return { active: false, reason: `audit mode: connections beyond ${to} are counted, not refused` };
  return { active: true, reason: `host network namespace, connections only to ${to} (eBPF egress allow-list); the server serves only its Unix socket` };
}

export function decideTier(tier: TierConfig, s: EnforcementStatus): TierEnforcement {
  const base = { tier: tier.name, mode: tier.mode, enforcement: tier.enforcement };
  if (tier.upstreams.length > 0) {
    const why = 'served by upstreams outside fhirguard (their own confinement: see `fhirguard record --cgroup`)';
    const m = { active: false, reason: why };
    return { ...base, status: 'external', confinement: 'none', mechanisms: { seccomp: m, ebpf: m, mount_ro: m, netns: m }, reason: why };
  }
  const audit = tier.mode === 'audit';
  let mechanisms: Record<Mechanism, MechanismState>;
  if (!s.containers.ok) {
    const m = { active: false, reason: `workers run as plain processes: ${s.containers.reason}` };
    mechanisms = { seccomp: m, ebpf: m, mount_ro: m, netns: m };
  } else {
    mechanisms = {
      seccomp: audit ? { active: false, reason: 'audit mode: the profile logs (SCMP_ACT_LOG) instead of refusing' } : { active: true, reason: 'tier profile, refusals return EPERM' },
      ebpf: !s.ebpf.ok
        ? { active: false, reason: s.ebpf.reason ?? 'unavailable' }
        : audit
          ? { active: false, reason: 'audit mode: violations are counted, not killed' }
          : { active: true, reason: 'boot/serve phase policy on each worker cgroup, violations killed' },
      mount_ro: { active: true, reason: tier.readOnly ? 'read-only root and read-only database directory' : 'read-only root; database directory writable (the tier writes)' },
      netns: netnsOf(tier, s, audit),
    };
  }
  const missing = !s.containers.ok ? [s.containers.reason] : !s.ebpf.ok ? [`eBPF: ${s.ebpf.reason}`] : [];
  if (tier.enforcement === 'required' && missing.length) {
    return { ...base, status: 'refused', confinement: 'none', mechanisms, reason: `enforcement: required, but ${missing.join('; ')}` };
  }
  return { ...base, status: 'running', confinement: s.containers.ok ? 'container' : 'process', mechanisms };
}
