// Kernel enforcement as Prometheus metrics, read from the agent at scrape time (the proxy
// holds no kernel state of its own): syscall calls and violations per tier, egress
// denials, workers by state, restarts, which mechanisms are active per tier, and the
// profile each tier runs under. Syscall labels are names from the x86_64 table, so their
// cardinality is bounded by the kernel, not by clients.

import { Gauge, type Registry } from 'prom-client';
import type { AgentClient, WorkerInfo } from '../agent-api/client';
import { MECHANISMS } from '../agent-api/messages';
import { DOCKER_DEFAULT_ALLOWED_COUNT } from '../profile/reference';
import { collected } from './collected';

const WORKER_STATES = ['starting', 'ready', 'serving', 'draining', 'crashed', 'refused', 'stopped'] as const;

/**
 * One agent call per scrape however many metrics read it, and a scrape that still answers
 * (with the proxy's own metrics) while the agent is away: a failed call yields `fallback`.
 */
function perScrape<T>(call: () => Promise<T>, fallback: T, onError: (err: Error) => void): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at > 250) {
      last = { at: now, value: call().catch((err: Error) => (onError(err), fallback)) };
    }
    return last.value;
  };
}

/** Where the numbers come from: the agent API (the proxy), or a node agent's own state. */
export interface EnforcementSource {
  counters: AgentClient['counters'];
  enforcement: AgentClient['enforcement'];
  /** Only what the metrics read of each worker. */
  workers(): Promise<Array<Pick<WorkerInfo, 'tier' | 'id' | 'restarts'> & { state: string }>>;
}

export function registerEnforcementMetrics(registry: Registry, client: EnforcementSource, tierNames: readonly string[], onError: (err: Error) => void): void {
  const agent = {
    counters: perScrape(() => client.counters(), { available: false, eventsDropped: 0, tiers: [] } as Awaited<ReturnType<AgentClient['counters']>>, onError),
    workers: perScrape(() => client.workers(), [] as Awaited<ReturnType<AgentClient['workers']>>, onError),
    enforcement: perScrape(() => client.enforcement(), { degraded: true, tiers: [] } as Awaited<ReturnType<AgentClient['enforcement']>>, onError),
  };
  collected(registry, {
    name: 'fhirguard_syscalls_total',
    help: "System calls made by each tier's workers (eBPF counters, boot and serve phases)",
    type: 'counter',
    async values() {
      const c = await agent.counters();
      return c.tiers.flatMap((t) => Object.entries(t.syscalls).map(([syscall, s]) => ({ labels: { tier: t.tier, syscall }, value: s.calls })));
    },
  });
  collected(registry, {
    name: 'fhirguard_syscall_violations_total',
    help: "System calls outside a tier's eBPF policy, by the action taken (enforce: killed; audit: counted)",
    type: 'counter',
    async values() {
      const c = await agent.counters();
      return c.tiers.flatMap((t) =>
        Object.entries(t.syscalls)
          .filter(([, s]) => s.violations > 0)
          .map(([syscall, s]) => ({ labels: { tier: t.tier, syscall, action: t.action }, value: s.violations })),
      );
    },
  });
  collected(registry, {
    name: 'fhirguard_egress_denied_total',
    help: "Outbound connections refused by a tier's egress allow-list",
    type: 'counter',
    async values() {
      const c = await agent.counters();
      return c.tiers.map((t) => ({ labels: { tier: t.tier }, value: t.egressDenied }));
    },
  });
  new Gauge({
    name: 'fhirguard_workers',
    help: 'Workers by tier and state, as the agent reports them',
    labelNames: ['tier', 'state'],
    registers: [registry],
    async collect() {
      const workers = await agent.workers();
      this.reset();
      for (const tier of tierNames) for (const state of WORKER_STATES) this.set({ tier, state }, 0);
      for (const w of workers) this.inc({ tier: w.tier, state: w.state });
    },
  });
  const restarts = new Map<string, { tier: string; n: number }>();
  collected(registry, {
    name: 'fhirguard_worker_restarts_total',
    help: 'Worker restarts after a crash, a kill or a failed health check',
    type: 'counter',
    async values() {
      // Summed over every worker seen, gone ones too (a rollout replaces workers with new
      // ids): the counter never goes down while the proxy runs.
      for (const w of await agent.workers()) restarts.set(w.id, { tier: w.tier, n: Math.max(w.restarts, restarts.get(w.id)?.n ?? 0) });
      const sums = new Map<string, number>(tierNames.map((t) => [t, 0]));
      for (const { tier, n } of restarts.values()) sums.set(tier, (sums.get(tier) ?? 0) + n);
      return [...sums].map(([tier, value]) => ({ labels: { tier }, value }));
    },
  });
  collected(registry, {
    name: 'fhirguard_worker_start_refusals_total',
    help: "Worker starts refused because the tier failed a check before start, by reason (the signed-statement check's, or scan for the image's scan gate)",
    type: 'counter',
    async values() {
      const e = await agent.enforcement();
      return e.tiers.flatMap((t) => Object.entries(t.startRefusals ?? {}).map(([reason, value]) => ({ labels: { tier: t.tier, reason }, value })));
    },
  });
  new Gauge({
    name: 'fhirguard_tier_trusted',
    help: "Whether the tier's last signed-statement check passed (1) or refused a start (0); absent where the agent checks no statements",
    labelNames: ['tier'],
    registers: [registry],
    async collect() {
      const e = await agent.enforcement();
      this.reset();
      for (const t of e.tiers) if (t.trust) this.set({ tier: t.tier }, t.trust.status === 'verified' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fhirguard_enforcement_active',
    help: 'Whether a confinement mechanism is active for a tier (1) or not (0): seccomp, ebpf, mount_ro, netns',
    labelNames: ['tier', 'mechanism'],
    registers: [registry],
    async collect() {
      const e = await agent.enforcement();
      this.reset();
      for (const t of e.tiers) for (const m of MECHANISMS) this.set({ tier: t.tier, mechanism: m }, t.mechanisms[m].active ? 1 : 0);
    },
  });
  new Gauge({
    name: 'fhirguard_profile_info',
    help: 'The profile each tier runs under: digest of its seccomp and eBPF files and its seccomp allow count',
    labelNames: ['tier', 'digest', 'allowed_syscalls'],
    registers: [registry],
    async collect() {
      const e = await agent.enforcement();
      this.reset();
      for (const t of e.tiers) {
        if (t.profile) this.set({ tier: t.tier, digest: t.profile.digest, allowed_syscalls: String(t.profile.seccompAllowed) }, 1);
      }
    },
  });
  new Gauge({
    name: 'fhirguard_docker_default_allowed_syscalls',
    help: "x86_64 syscalls Docker's default seccomp profile allows: the baseline for each tier's allow counts",
    registers: [registry],
  }).set(DOCKER_DEFAULT_ALLOWED_COUNT);
  new Gauge({
    name: 'fhirguard_profile_allowed_syscalls',
    help: "Syscalls a tier's profile allows, by phase (seccomp: the whole life; serve: the eBPF serve set)",
    labelNames: ['tier', 'phase'],
    registers: [registry],
    async collect() {
      const e = await agent.enforcement();
      this.reset();
      for (const t of e.tiers) {
        if (!t.profile) continue;
        this.set({ tier: t.tier, phase: 'seccomp' }, t.profile.seccompAllowed);
        this.set({ tier: t.tier, phase: 'serve' }, t.profile.serveAllowed);
      }
    },
  });
}
