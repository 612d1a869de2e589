// fhirguard's request metrics, in one prom-client Registry served by the admin listener.
// Label values come only from fixed sets (tier names of the policy, interaction kinds, the
// 146 R4 resource types, the outcomes below, refusal reasons of a bounded shape), so no
// client input can grow the series count.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { INTERACTION_KINDS } from '../fhir/interaction';
import { isResourceType } from '../fhir/search-parameters';
import { registerBuildInfo } from './build-info';
import type { Limit } from '../policy/limits';
import { CounterCell, HistogramCell, LeanCounter, LeanHistogram } from './lean';

/** How a request ended, from the client's point of view ('client-closed': it hung up first). */
export const OUTCOMES = ['success', 'client-error', 'server-error', 'refused', 'upstream-error', 'client-closed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const STAGES = ['classify', 'policy', 'validate', 'proxy'] as const;
export type Stage = (typeof STAGES)[number];

export const RELOAD_RESULTS = ['applied', 'unchanged', 'refused'] as const;
export type ReloadResult = (typeof RELOAD_RESULTS)[number];

/** Label value for requests refused before a tier or interaction was known. */
export const NONE = 'none';

const MAX_REASONS = 200;
const REASON_SHAPE = /^[a-z0-9][a-z0-9_-]{0,47}$/;
const KNOWN_KINDS: ReadonlySet<string> = new Set(INTERACTION_KINDS);

const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STAGE_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];

/** The policy's limits as the metrics read them (src/proxy/limits.ts). */
export interface LimitsSource {
  config: { global: Limit; perClient: Limit; clients: ReadonlyMap<string, Limit> };
  inflight: number;
}

export interface TierHealthSource {
  /** Healthy and total members per tier, read at scrape time. */
  tierHealth(): { tier: string; healthy: number; members: number }[];
}

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly requests: LeanCounter;
  private readonly requestDuration: LeanHistogram;
  private readonly upstreamDuration: LeanHistogram;
  private readonly refusals: LeanCounter;
  private readonly upstreamErrors: Counter<'tier' | 'kind'>;
  private readonly retries: Counter<'tier'>;
  private readonly tiers: ReadonlySet<string>;
  private readonly stageCells: Record<Stage, HistogramCell>;
  private readonly reasons = new Set<string>();
  private healthSource: TierHealthSource | undefined;
  private limitsSource: (() => LimitsSource | undefined) | undefined;
  private readonly policyInfo: Gauge<'digest'>;
  private readonly connectionsRefused: Counter<'limit'>;
  private readonly policyReloads: Counter<'result'>;

  constructor(tierNames: readonly string[], { processMetrics = true }: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    this.tiers = new Set(tierNames);
    this.requests = new LeanCounter('fhirguard_requests_total', 'FHIR requests by tier, interaction, resource type and outcome', ['tier', 'interaction', 'resource_type', 'outcome'], r);
    this.requestDuration = new LeanHistogram('fhirguard_request_duration_seconds', 'Time from request arrival to the last byte of the response', ['tier', 'interaction'], r, REQUEST_BUCKETS);
    this.upstreamDuration = new LeanHistogram('fhirguard_upstream_duration_seconds', 'Time the tier upstream took, from dispatch to the end of its response body', ['tier'], r, REQUEST_BUCKETS);
    const stages = new LeanHistogram('fhirguard_stage_duration_seconds', 'Time per request-path stage; proxy is the whole request minus the upstream time', ['stage'], r, STAGE_BUCKETS);
    this.stageCells = Object.fromEntries(STAGES.map((s) => [s, stages.cell(s)])) as Record<Stage, HistogramCell>;
    this.refusals = new LeanCounter('fhirguard_refusals_total', 'Requests refused by fhirguard, by reason', ['reason'], r);
    this.upstreamErrors = new Counter({
      name: 'fhirguard_upstream_errors_total',
      help: "Upstream failures by tier and kind (connect, timeout, unavailable; refused: the agent refused to start the tier's workers)",
      labelNames: ['tier', 'kind'],
      registers: [r],
    });
    this.retries = new Counter({
      name: 'fhirguard_upstream_retries_total',
      help: 'Idempotent reads retried on another member after a connection error',
      labelNames: ['tier'],
      registers: [r],
    });
    // prom-client calls collect() with the gauge as `this`: the registry is reached by name.
    const health = (): TierHealthSource | undefined => this.healthSource;
    new Gauge({
      name: 'fhirguard_upstream_healthy_members',
      help: 'Members of each tier pool that pass their health check',
      labelNames: ['tier'],
      registers: [r],
      // Each process checks the members itself: across processes, the most pessimistic view.
      aggregator: 'min',
      collect() {
        for (const t of health()?.tierHealth() ?? []) this.set({ tier: t.tier }, t.healthy);
      },
    });
    new Gauge({
      name: 'fhirguard_upstream_members',
      help: 'Members configured in each tier pool',
      labelNames: ['tier'],
      registers: [r],
      aggregator: 'max',
      collect() {
        for (const t of health()?.tierHealth() ?? []) this.set({ tier: t.tier }, t.members);
      },
    });
    // Which policy decides, by content: two processes or two hosts on the same digest decide alike.
    this.policyInfo = new Gauge({
      name: 'fhirguard_policy_info',
      help: 'The policy in force, by the sha256 digest of its file (value 1)',
      labelNames: ['digest'],
      registers: [r],
      aggregator: 'max',
    });
    this.policyReloads = new Counter({
      name: 'fhirguard_policy_reloads_total',
      help: 'Policy reloads by result: applied, unchanged (same digest), refused (the old policy stays)',
      labelNames: ['result'],
      registers: [r],
    });
    for (const result of RELOAD_RESULTS) this.policyReloads.inc({ result }, 0);
    this.connectionsRefused = new Counter({
      name: 'fhirguard_connections_refused_total',
      help: 'Connections closed as they arrived, over --max-connections (total) or --max-connections-per-address (per-address)',
      labelNames: ['limit'],
      registers: [r],
    });
    for (const limit of ['total', 'per-address']) this.connectionsRefused.inc({ limit }, 0);
    const limits = (): LimitsSource | undefined => this.limitsSource?.();
    new Gauge({
      name: 'fhirguard_limit',
      help: "The policy's limits in force: requests a second (rate), at once above it (burst), in flight (concurrency)",
      labelNames: ['scope', 'kind'],
      registers: [r],
      aggregator: 'max',
      collect() {
        this.reset();
        const l = limits();
        if (!l) return;
        const put = (scope: string, limit: { rate?: number; burst?: number; concurrency?: number }) => {
          for (const kind of ['rate', 'burst', 'concurrency'] as const) if (limit[kind] !== undefined) this.set({ scope, kind }, limit[kind]);
        };
        put('global', l.config.global);
        put('per-client', l.config.perClient);
        for (const [client, limit] of l.config.clients) put(`client:${client}`, limit);
      },
    });
    new Gauge({
      name: 'fhirguard_requests_in_flight',
      help: 'Requests the global concurrency limit counts now (with a global concurrency limit in the policy)',
      registers: [r],
      collect() {
        this.set(limits()?.inflight ?? 0);
      },
    });
    registerBuildInfo(r, 'proxy');
    if (processMetrics) collectDefaultMetrics({ register: r });
  }

  /** The policy now in force (the one before it leaves the gauge). */
  policyInForce(digest: string): void {
    this.policyInfo.reset();
    this.policyInfo.set({ digest }, 1);
  }

  policyReload(result: ReloadResult): void {
    this.policyReloads.inc({ result });
  }

  connectionRefused(limit: 'total' | 'per-address'): void {
    this.connectionsRefused.inc({ limit });
  }

  /** Where the limits in force are read at scrape time (the policy generation in force). */
  setLimitsSource(source: () => LimitsSource | undefined): void {
    this.limitsSource = source;
  }

  setHealthSource(source: TierHealthSource): void {
    this.healthSource = source;
  }

  stage(s: Stage): HistogramCell {
    return this.stageCells[s];
  }

  tierLabel(tier: string | undefined): string {
    return tier !== undefined && this.tiers.has(tier) ? tier : NONE;
  }

  /** The counter of one (tier, interaction, type, outcome); labels are bounded here. */
  requestCell(tier: string | undefined, interaction: string | undefined, resourceType: string | undefined, outcome: Outcome): CounterCell {
    return this.requests.cell(
      this.tierLabel(tier),
      interaction !== undefined && KNOWN_KINDS.has(interaction) ? interaction : NONE,
      resourceType !== undefined && isResourceType(resourceType) ? resourceType : '',
      outcome,
    );
  }

  durationCell(tier: string | undefined, interaction: string | undefined): HistogramCell {
    return this.requestDuration.cell(this.tierLabel(tier), interaction !== undefined && KNOWN_KINDS.has(interaction) ? interaction : NONE);
  }

  upstreamCell(tier: string): HistogramCell {
    return this.upstreamDuration.cell(this.tierLabel(tier));
  }

  refusal(reason: string): void {
    let label = REASON_SHAPE.test(reason) ? reason : 'other';
    if (!this.reasons.has(label)) {
      if (this.reasons.size >= MAX_REASONS) label = 'other';
      else this.reasons.add(label);
    }
    this.refusals.cell(label).inc();
  }

  upstreamError(tier: string, kind: 'connect' | 'timeout' | 'unavailable' | 'refused'): void {
    this.upstreamErrors.inc({ tier: this.tierLabel(tier), kind });
  }

  retry(tier: string): void {
    this.retries.inc({ tier: this.tierLabel(tier) });
  }
}
