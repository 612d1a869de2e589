// Per-tier eBPF counters for GET /counters: the live workers' cgroups plus the totals of
// the tier's workers that ended (a restarted worker has a new cgroup, and Prometheus
// counters must not go down when it does).

import type { CgroupCounters } from '../enforce/bpf';
import type { TierCounters } from '../agent-api/messages';

export class CounterTotals {
  private retired = new Map<string, TierCounters>();

  constructor(private readonly actions: ReadonlyMap<string, 'enforce' | 'audit'>) {}

  private empty(tier: string): TierCounters {
    return { tier, action: this.actions.get(tier) ?? 'enforce', syscalls: {}, egressDenied: 0, egressAllowed: 0 };
  }

  /** Adds an ended worker's last counters to its tier. */
  retire(tier: string, c: CgroupCounters): void {
    const t = this.retired.get(tier) ?? this.empty(tier);
    add(t, c);
    this.retired.set(tier, t);
  }

  /** A worker its seccomp filter killed (SIGSYS): one violation of each call the kernel log named. */
  seccompKill(tier: string, names: readonly string[]): void {
    const t = this.retired.get(tier) ?? this.empty(tier);
    for (const name of names) {
      const cur = t.syscalls[name] ?? { calls: 0, violations: 0 };
      cur.calls += 1;
      cur.violations += 1;
      t.syscalls[name] = cur;
    }
    this.retired.set(tier, t);
  }

  /** The tiers' totals: retired workers plus the live cgroups given. */
  snapshot(tiers: readonly string[], live: ReadonlyArray<{ tier: string; counters: CgroupCounters }>): TierCounters[] {
    const out = new Map<string, TierCounters>();
    for (const tier of tiers) {
      const r = this.retired.get(tier);
      out.set(tier, r ? { ...r, syscalls: Object.fromEntries(Object.entries(r.syscalls).map(([k, v]) => [k, { ...v }])) } : this.empty(tier));
    }
    for (const l of live) {
      const t = out.get(l.tier);
      if (t) add(t, l.counters);
    }
    return [...out.values()];
  }
}

function add(t: TierCounters, c: CgroupCounters): void {
  for (const [name, s] of Object.entries(c.syscalls)) {
    const cur = t.syscalls[name] ?? { calls: 0, violations: 0 };
    cur.calls += s.calls;
    cur.violations += s.violations;
    t.syscalls[name] = cur;
  }
  t.egressDenied += c.egressDenied;
  t.egressAllowed += c.egressAllowed;
}
