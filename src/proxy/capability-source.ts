// Keeps the front door's CapabilityStatement current: fetches each tier's backend statement
// (GET /metadata on a healthy member) at start and whenever a member of the tier becomes
// healthy (a worker started, restarted or rolled out), and rebuilds the statement then, never
// per request. Until a tier's backend answers, the statement lists for that tier what the
// policy allows, and says so.

import type { Logger } from 'pino';
import type { Policy } from '../policy';
import { fhirguardVersion } from '../version';
import { type BackendStatement, buildCapabilityStatement } from './capability-statement';
import type { UpstreamPools } from './pool';

export class CapabilitySource {
  private readonly backends = new Map<string, BackendStatement>();
  private readonly started = new Date();
  private text = '';
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly policy: Policy,
    private readonly pools: UpstreamPools,
    private readonly base: string,
    private readonly log: Logger,
    /** With authorization: the issuer's endpoints for rest.security, as known now. */
    private readonly security?: () => { authorize?: string; token?: string },
  ) {
    this.rebuild();
  }

  /** The issuer's endpoints became known: the statement names them. */
  securityChanged(): void {
    this.rebuild();
  }

  /** The statement as served, JSON text. */
  current(): string {
    return this.text;
  }

  /** Fetches every tier's backend statement once (at start). */
  async refreshAll(): Promise<void> {
    await Promise.all(this.pools.all().map((p) => this.fetch(p.name)));
    this.rebuild();
  }

  /** A member of `tier` became healthy: its backend may have changed; fetch again. */
  memberHealthy(tier: string): void {
    if (this.pending.has(tier)) return;
    // A short delay gathers the members of a tier that come up together into one fetch.
    const timer = setTimeout(() => {
      void this.fetch(tier)
        .then(() => this.rebuild())
        .finally(() => this.pending.delete(tier));
    }, 50);
    timer.unref();
    this.pending.set(tier, timer);
  }

  /**
   * Whether the statement is up to date with the members known now: no fetch waiting or under
   * way. The proxy reports ready only then, so a client that waits for /readyz never reads a
   * statement that leaves a serving tier's backend out.
   */
  settled(): boolean {
    return this.pending.size === 0;
  }

  stop(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  private async fetch(tier: string): Promise<void> {
    const pool = this.pools.get(tier);
    const member = pool?.pick();
    if (!pool || !member) return;
    try {
      const res = await member.client.request({
        path: `${member.upstream.basePath}/metadata`,
        method: 'GET',
        headers: { host: member.upstream.host, accept: 'application/fhir+json', 'user-agent': 'fhirguard-capabilities' },
        headersTimeout: pool.timeoutMs,
        bodyTimeout: pool.timeoutMs,
      });
      const body = (await res.body.json()) as { resourceType?: unknown };
      if (res.statusCode === 200 && body?.resourceType === 'CapabilityStatement') this.backends.set(tier, body as BackendStatement);
      else this.log.warn({ tier, status: res.statusCode }, `the '${tier}' backend's /metadata is not a CapabilityStatement; the front door's statement lists what the policy allows for it`);
    } catch (err) {
      this.log.warn({ tier, err }, `could not read the '${tier}' backend's CapabilityStatement; the front door's statement lists what the policy allows for it`);
    }
  }

  private rebuild(): void {
    this.text = JSON.stringify(
      buildCapabilityStatement({
        policy: this.policy,
        base: this.base,
        version: fhirguardVersion(),
        backends: this.backends,
        started: this.started,
        ...(this.security ? { security: this.security() } : {}),
      }),
    );
  }
}
