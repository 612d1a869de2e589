// The policy's `limits:` at the front door: a request over a rate or concurrency limit is
// answered 429 with Retry-After and an OperationOutcome, and never reaches an upstream.
//
// Where the checks sit: the global limits before the token check, so a flood costs no token
// verification; the client's after it, since the client is who the token says (its client
// id), else its client certificate (mTLS), else its IP address (a token that does not verify
// is refused there anyway). Rates are
// token buckets; a concurrency slot is held from admission until the response is done or the
// client is gone, released exactly once. Per-client state is bounded: the least recently
// seen clients' buckets are forgotten beyond MAX_CLIENTS (a forgotten bucket starts full).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, refuse } from '../fhir/outcome';
import type { Limit, LimitsConfig } from '../policy/limits';
import { connectionCertificate } from './client-certificates';
import type { RequestState } from './request-state';

/** Most clients whose buckets are remembered at once. */
const MAX_CLIENTS = 50_000;

/** A token bucket: `rate` a second on average, up to `burst` at once. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token at `now` (ms): 0 when there was one, else the seconds until there is. */
  take(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / this.rate));
  }
}

interface ClientState {
  bucket: TokenBucket | undefined;
  inflight: number;
}

function throttled(reason: 'rate-limit' | 'concurrency-limit', retryAfter: number, diagnostics: string): FhirError {
  const e = refuse(429, reason, 'throttled', diagnostics);
  e.headers = { 'retry-after': String(retryAfter) };
  return e;
}

export class RequestLimits {
  private readonly globalBucket: TokenBucket | undefined;
  private globalInflight = 0;
  private readonly clients = new Map<string, ClientState>();

  /** The limits of a policy, or undefined when it sets none (no check runs then). */
  static of(config: LimitsConfig, now: () => number = Date.now): RequestLimits | undefined {
    const any = (l: Limit): boolean => l.rate !== undefined || l.concurrency !== undefined;
    return any(config.global) || any(config.perClient) || config.clients.size > 0 ? new RequestLimits(config, now) : undefined;
  }

  constructor(
    readonly config: LimitsConfig,
    private readonly now: () => number = Date.now,
  ) {
    const g = config.global;
    this.globalBucket = g.rate !== undefined ? new TokenBucket(g.rate, g.burst ?? g.rate, now()) : undefined;
  }

  /** Requests in flight now, as the global concurrency limit counts them. */
  get inflight(): number {
    return this.globalInflight;
  }

  /** Clients remembered now. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** The global limits: undefined when admitted (a concurrency slot is then held until the reply ends). */
  admitGlobal(reply: FastifyReply): FhirError | undefined {
    const g = this.config.global;
    if (this.globalBucket) {
      const wait = this.globalBucket.take(this.now());
      if (wait > 0) return throttled('rate-limit', wait, `the front door takes at most ${g.rate} requests a second in all; retry in ${wait} s`);
    }
    if (g.concurrency !== undefined) {
      if (this.globalInflight >= g.concurrency) return throttled('concurrency-limit', 1, `the front door serves at most ${g.concurrency} requests at once; retry in 1 s`);
      this.globalInflight++;
      onEnd(reply, () => this.globalInflight--);
    }
    return undefined;
  }

  /** The client's limits, once who it is is known. */
  admitClient(request: FastifyRequest, reply: FastifyReply): FhirError | undefined {
    const clientId = (request.fhirguard as RequestState | null)?.identity?.clientId;
    const named = clientId !== undefined ? this.config.clients.get(clientId) : undefined;
    const limit = named ?? this.config.perClient;
    if (limit.rate === undefined && limit.concurrency === undefined) return undefined;
    const certificate = clientId === undefined ? connectionCertificate(request.raw.socket) : undefined;
    const key = clientId !== undefined ? `client ${clientId}` : certificate ? `certificate ${certificate.subject}` : `address ${request.ip}`;
    let c = this.clients.get(key);
    if (c) {
      // Most recently seen last: the first entries are the ones to forget.
      this.clients.delete(key);
      this.clients.set(key, c);
    } else {
      c = { bucket: limit.rate !== undefined ? new TokenBucket(limit.rate, limit.burst ?? limit.rate, this.now()) : undefined, inflight: 0 };
      this.clients.set(key, c);
      this.forgetBeyond(MAX_CLIENTS);
    }
    if (c.bucket) {
      const wait = c.bucket.take(this.now());
      if (wait > 0) return throttled('rate-limit', wait, `${key} may send at most ${limit.rate} requests a second; retry in ${wait} s`);
    }
    if (limit.concurrency !== undefined) {
      if (c.inflight >= limit.concurrency) return throttled('concurrency-limit', 1, `${key} may have at most ${limit.concurrency} requests in flight; retry in 1 s`);
      c.inflight++;
      const state = c;
      onEnd(reply, () => state.inflight--);
    }
    return undefined;
  }

  /** Forgets the least recently seen clients with nothing in flight, down to `max`. */
  private forgetBeyond(max: number): void {
    if (this.clients.size <= max) return;
    for (const [key, c] of this.clients) {
      if (this.clients.size <= max) return;
      if (c.inflight === 0) this.clients.delete(key);
    }
  }
}

/** Runs `release` when the response is done or its connection is gone: 'close' comes once, either way. */
function onEnd(reply: FastifyReply, release: () => void): void {
  reply.raw.once('close', release);
}
