// The HTTP client @fastify/reply-from forwards through, for every request but reads (GET and
// HEAD stream on undici's dispatch API themselves: read-stream.ts). reply-from sends every
// request to the origin returned by getUpstream; fhirguard gives it one placeholder origin per
// tier, and this dispatcher turns that into a member of the tier's pool: round-robin over
// healthy members, the member's Host and base path, and failover (the tier's timeouts are set
// on each member's pool). Failover lives here rather than in reply-from's retry because a
// retry must go to a different member. A GET or HEAD that meets a connection error goes once
// to another member; any other request does only when the connection could not even be made
// (it was never sent, so it is still sent once): a write is never sent twice.

import type { Dispatcher } from 'undici';
import { DeadlineError, isConnectionError, neverSent, NoHealthyMemberError } from './errors';
import type { Member, TierPool, UpstreamPools } from './pool';

/** Methods whose request may be sent twice without changing anything upstream. */
const IDEMPOTENT_READS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

function ignoreBodyError(): void {}

type Callback = (err: Error | null, data?: Dispatcher.ResponseData) => void;

export interface DispatchHooks {
  onRetry?(tier: string): void;
}

export class TierDispatcher {
  private readonly byOrigin = new Map<string, TierPool>();
  private readonly originByTier = new Map<string, string>();

  constructor(
    pools: UpstreamPools,
    private readonly hooks: DispatchHooks = {},
  ) {
    pools.all().forEach((p, i) => {
      // A placeholder origin per tier; never resolved, only looked up here.
      const origin = `http://tier-${i}.fhirguard.invalid`;
      this.byOrigin.set(origin, p);
      this.originByTier.set(p.name, origin);
    });
  }

  /** The origin reply-from should use for a tier. */
  originOf(tier: string): string | undefined {
    return this.originByTier.get(tier);
  }

  /** The subset of undici's Dispatcher.request that reply-from calls. */
  request(opts: Dispatcher.RequestOptions & { origin?: string }, callback: Callback): void {
    const pool = this.byOrigin.get(String(opts.origin));
    if (!pool) {
      callback(new Error(`no upstream pool for ${String(opts.origin)}`));
      return;
    }
    const member = pool.pick();
    if (!member) {
      callback(new NoHealthyMemberError(pool.name, pool.unavailable, pool.down));
      return;
    }
    this.send(pool, member, opts, 1, callback);
  }

  private send(pool: TierPool, member: Member, opts: Dispatcher.RequestOptions, retries: number, callback: Callback): void {
    const headers = opts.headers as Record<string, string | string[] | undefined>;
    headers.host = member.upstream.host;
    // The tier's timeout bounds the whole wait, a wait for a free connection included (undici's
    // own timeouts start only once a connection carries the request). A request still waiting
    // when it passes is aborted before it is ever sent.
    const abort = new AbortController();
    let settled = false;
    const deadline = setTimeout(() => {
      settled = true;
      abort.abort(new DeadlineError(pool.timeoutMs));
      callback(new DeadlineError(pool.timeoutMs));
    }, pool.timeoutMs);
    member.client.request(
      {
        path: member.upstream.basePath + opts.path,
        method: opts.method,
        headers,
        body: opts.body,
        signal: abort.signal,
      },
      (err: Error | null, data?: Dispatcher.ResponseData) => {
        // reply-from destroys the body of an answer whose client already hung up, and undici
        // then emits an abort error on it that nobody else listens for: without this listener
        // one impatient client would take the proxy down. Fastify's own listeners still see
        // errors on bodies it is sending.
        data?.body?.on('error', ignoreBodyError); // on errors undici passes { opaque } only
        if (settled) {
          data?.body?.destroy();
          return;
        }
        settled = true;
        clearTimeout(deadline);
        if (err && isConnectionError(err)) {
          pool.markDown(member, err);
          // A write that may have reached the member is never sent again (it may have been applied).
          if (retries > 0 && (IDEMPOTENT_READS.has(opts.method) || neverSent(err))) {
            const other = pool.pick(member);
            if (other) {
              this.hooks.onRetry?.(pool.name);
              this.send(pool, other, opts, retries - 1, callback);
              return;
            }
          }
        }
        callback(err, data);
      },
    );
  }
}
