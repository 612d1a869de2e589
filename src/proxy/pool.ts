// Upstream pools, one per tier: round-robin over the members that pass their health check.
// A member is marked down at once when a connection to it fails (and re-checked right away,
// so a one-off glitch costs one request, not a check interval); an active check
// (`GET /metadata`, the FHIR capabilities endpoint every server has) brings it back.

import { Pool, type Dispatcher } from 'undici';
import { parseUpstream, Upstream } from './address';
import { upstreamClient } from './upstream-client';

export interface PoolOptions {
  /** Milliseconds between health checks of each member. */
  checkIntervalMs?: number;
  /** Milliseconds a health check may take. */
  checkTimeoutMs?: number;
  /** Concurrent connections per member. */
  connections?: number;
  /** Called when a member changes state (for logs). */
  onStateChange?: (tier: string, member: string, healthy: boolean, why: string) => void;
}

export class Member {
  healthy = false;
  lastError = '';
  private checking = false;

  constructor(
    readonly tier: TierPool,
    readonly upstream: Upstream,
    /** The member's connections. */
    readonly client: Pool,
  ) {}

  get spec(): string {
    return this.upstream.spec;
  }

  /**
   * One health check: healthy when GET /metadata answers 2xx within the timeout once a
   * connection carries it. The wait for that connection is bounded too, by the tier's timeout
   * (what a request would wait before its 504): a member that cannot give a check a connection
   * in that time cannot serve a request either, and a check stuck in its queue would leave the
   * member marked healthy, and every later check skipped, for as long as it is stuck.
   */
  async check(timeoutMs: number): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const res = await this.checkRequest(timeoutMs);
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) this.tier.setHealthy(this, true, 'health check passed');
      else this.tier.setHealthy(this, false, `health check answered ${res.statusCode}`);
    } catch (err) {
      this.tier.setHealthy(this, false, `health check failed: ${describe(err)}`);
    } finally {
      this.checking = false;
    }
  }

  /**
   * GET /metadata, given up once it has waited the tier's timeout plus `timeoutMs` in all.
   * undici's own timeouts start only once a connection carries the request, and an aborted
   * request still waiting for one stays in the pool's queue until one frees (it is then
   * dropped unsent), so the bound is kept here.
   */
  private checkRequest(timeoutMs: number): Promise<Dispatcher.ResponseData> {
    const bound = this.tier.timeoutMs + timeoutMs;
    const abort = new AbortController();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        abort.abort();
        reject(new Error(`no answer within ${bound} ms: every connection to the member stayed taken`));
      }, bound);
      this.client
        .request({
          path: `${this.upstream.basePath}/metadata`,
          method: 'GET',
          headers: { host: this.upstream.host, accept: 'application/fhir+json', 'user-agent': 'fhirguard-health' },
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: abort.signal,
        })
        .then(
          (res) => {
            clearTimeout(timer);
            resolve(res);
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err);
          },
        );
    });
  }
}

/** A server tier's member check timeout: a JVM's first /metadata, or one under load, is slow. */
export const SERVER_CHECK_TIMEOUT_MS = 10_000;

export class TierPool {
  members: Member[] = [];
  /**
   * Why the tier has no member, when the agent says its workers' starts were refused (set by
   * agent-members.ts); what a request answered 503 is told.
   */
  unavailable: string | undefined;
  /** Why the agent's workers of this tier last ended, when it said (agent-members.ts). */
  down: string | undefined;
  private healthy: Member[] = [];
  private next = 0;
  /** How long one health check may take: an operator's server (a JVM) gets longer than a worker. */
  private readonly checkTimeoutMs: number;

  constructor(
    readonly name: string,
    upstreams: readonly string[],
    readonly timeoutMs: number,
    private readonly opts: PoolOptions,
    server = false,
    /** The tier's CA bundle and client certificate for https:// members. */
    private readonly tls?: { ca?: string; cert?: string; key?: string },
  ) {
    this.checkTimeoutMs = server ? Math.max(SERVER_CHECK_TIMEOUT_MS, opts.checkTimeoutMs ?? 0) : (opts.checkTimeoutMs ?? 2000);
    for (const spec of upstreams) this.members.push(this.makeMember(spec));
  }

  private makeMember(spec: string): Member {
    const u = parseUpstream(spec);
    const client = new Pool(u.origin, {
      connections: this.opts.connections ?? 128,
      pipelining: 1,
      ...(u.socketPath ? { socketPath: u.socketPath } : {}),
      ...(this.tls && u.origin.startsWith('https:') ? { connect: upstreamTlsOptions(this.tls) } : {}),
      connectTimeout: Math.min(this.timeoutMs, 10_000),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      // Connections that never lose their slot to a request undici refused (upstream-client.ts).
      factory: upstreamClient,
    });
    return new Member(this, u, client);
  }

  /**
   * Replaces the membership (the agent reports workers starting, serving, dying): members
   * that stay keep their connections; new ones are checked before they get traffic; gone
   * ones stop getting traffic at once and are closed once their requests finish.
   */
  setUpstreams(specs: readonly string[]): void {
    const wanted = new Set(specs);
    const kept = this.members.filter((m) => wanted.has(m.spec));
    const gone = this.members.filter((m) => !wanted.has(m.spec));
    const added = specs.filter((s) => !kept.some((m) => m.spec === s)).map((s) => this.makeMember(s));
    this.members = [...kept, ...added];
    this.healthy = this.members.filter((m) => m.healthy);
    for (const m of gone) {
      if (m.healthy) this.opts.onStateChange?.(this.name, m.spec, false, 'removed from the pool');
      void m.client.close();
    }
    for (const m of added) void m.check(this.checkTimeoutMs);
  }

  /** The next healthy member in round-robin order, skipping `avoid` (a member that just failed). */
  pick(avoid?: Member): Member | undefined {
    const h = this.healthy;
    const n = h.length;
    if (n === 0) return undefined;
    for (let i = 0; i < n; i++) {
      const m = h[this.next++ % n];
      if (m !== avoid) return m;
    }
    return undefined;
  }

  healthyCount(): number {
    return this.healthy.length;
  }

  setHealthy(member: Member, healthy: boolean, why: string): void {
    if (!healthy) member.lastError = why;
    if (member.healthy === healthy) return;
    member.healthy = healthy;
    this.healthy = this.members.filter((m) => m.healthy);
    if (this.next > 1e9) this.next = 0;
    this.opts.onStateChange?.(this.name, member.spec, healthy, why);
  }

  /** A connection to `member` failed: stop sending it requests, and see at once whether it is back. */
  markDown(member: Member, err: unknown): void {
    this.setHealthy(member, false, `connection failed: ${describe(err)}`);
    setImmediate(() => void member.check(this.checkTimeoutMs));
  }

  checkAll(): Promise<void> {
    return Promise.all(this.members.map((m) => m.check(this.checkTimeoutMs))).then(() => undefined);
  }
}

export class UpstreamPools {
  private readonly byName = new Map<string, TierPool>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    tiers: readonly { name: string; upstreams: readonly string[]; timeoutMs: number; server?: unknown; tls?: { ca?: string; cert?: string; key?: string } }[],
    private readonly opts: PoolOptions = {},
  ) {
    for (const t of tiers) this.byName.set(t.name, new TierPool(t.name, t.upstreams, t.timeoutMs, opts, t.server !== undefined, t.tls));
  }

  get(tier: string): TierPool | undefined {
    return this.byName.get(tier);
  }

  all(): TierPool[] {
    return [...this.byName.values()];
  }

  /** Checks every member now, then keeps checking them in the background. */
  async start(): Promise<void> {
    await Promise.all(this.all().map((p) => p.checkAll()));
    const interval = this.opts.checkIntervalMs ?? 2000;
    this.timer = setInterval(() => {
      for (const p of this.all()) void p.checkAll();
    }, interval);
    this.timer.unref();
  }

  /** Ready when every tier has at least one healthy member. */
  ready(): boolean {
    return this.all().every((p) => p.healthyCount() > 0);
  }

  tierHealth(): { tier: string; healthy: number; members: number; up: string[]; down: { member: string; error: string }[]; refused?: string }[] {
    return this.all().map((p) => ({
      tier: p.name,
      healthy: p.healthyCount(),
      members: p.members.length,
      // The members requests go to now (a rollout's switch shows here).
      up: p.members.filter((m) => m.healthy).map((m) => m.spec),
      down: p.members.filter((m) => !m.healthy).map((m) => ({ member: m.spec, error: m.lastError })),
      ...(p.unavailable ? { refused: p.unavailable } : {}),
    }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.all().flatMap((p) => p.members.map((m) => m.client.destroy())));
  }
}

/** undici's connect options for a tier's TLS: only what the tier sets, the system's CAs otherwise. */
function upstreamTlsOptions(tls: { ca?: string; cert?: string; key?: string }): { ca?: string; cert?: string; key?: string } {
  return { ...(tls.ca !== undefined ? { ca: tls.ca } : {}), ...(tls.cert !== undefined ? { cert: tls.cert } : {}), ...(tls.key !== undefined ? { key: tls.key } : {}) };
}

export function describe(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: string; message?: string };
    return e.code ? `${e.code}${e.message ? ` (${e.message})` : ''}` : String(e.message ?? err);
  }
  return String(err);
}
