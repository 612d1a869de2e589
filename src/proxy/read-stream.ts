// Reads (GET and HEAD) forwarded on undici's dispatch API: the upstream's status and headers
// become the client's as soon as they arrive, and each body chunk is written to the client's
// socket as undici hands it over, with the client's backpressure pausing the upstream.
//
// Why reads do not go through reply-from like every other request: reply-from's path
// (undici's request(), a Readable per response, Fastify piping it with two end-of-stream
// watchers) cost more per read than all of fhirguard's FHIR work together. Measured
// head-to-head on one CPU (bench:proxy, 2026-12-03): fhirguard through reply-from served
// 81-86% of a bare @fastify/http-proxy's reads, on this path 102-106%. Reads are most of
// a FHIR service's traffic; writes keep reply-from, whose body handling they need.
//
// Failover is the dispatcher's rule for reads: a connection error before the response
// started goes once to another healthy member. Everything else that fails before the
// response started becomes the tier's OperationOutcome (fail); after it started, the
// client's connection is cut, so a truncated body cannot pass for a whole one.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { util as undiciUtil, type Dispatcher } from 'undici';
import type { RequestState } from './request-state';
import { DeadlineError, isConnectionError, NoHealthyMemberError } from './errors';
import { forwardRequestHeaders, rewriteResponseHeaders, type LocationRewrite } from './headers';
import type { Member, TierPool, UpstreamPools } from './pool';

export interface ReadStreamOptions {
  pools: UpstreamPools;
  /** The FHIR base path, e.g. '/fhir'. */
  base: string;
  rewriteLocation: LocationRewrite;
  /** A read went to another member after a connection error. */
  onRetry(tier: string): void;
  /** Answers a read that failed before its response started (the upstream fault's OperationOutcome). */
  fail(reply: FastifyReply, err: Error): void;
  /** The upstream broke off a response already under way (the client's connection is cut). */
  broke(request: FastifyRequest, err: Error): void;
  /** The client's connection closed before its response was complete. */
  closedEarly(request: FastifyRequest): void;
}

type Headers = Record<string, string | string[] | number | undefined>;

export class ReadStreamer {
  constructor(private readonly o: ReadStreamOptions) {}

  /** Sends a checked GET or HEAD to a member of its tier; `path` is below the base, with the query to forward. */
  forward(request: FastifyRequest, reply: FastifyReply, path: string): FastifyReply {
    const state = request.fhirguard as RequestState;
    const pool = this.o.pools.get(state.tier?.name ?? '');
    const member = pool?.pick();
    if (!pool || !member) {
      this.o.fail(reply, new NoHealthyMemberError(state.tier?.name ?? 'unknown', pool?.unavailable, pool?.down));
      return reply;
    }
    const query = state.forwardQuery;
    const headers = forwardRequestHeaders(request, request.headers as Headers, this.o.base, false);
    state.upstreamStart = performance.now();
    new ReadExchange(this.o, request, reply, pool, query ? `${path}?${query}` : path, headers).send(member);
    return reply;
  }
}

/** One read on its way: undici's handler for it (the pre-v7 callback form, which undici calls directly). */
class ReadExchange implements Dispatcher.DispatchHandler {
  private member: Member | undefined;
  private retried = false;
  private abort: ((err?: Error) => void) | undefined;
  private resume: (() => void) | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** The tier's timeout passed while the read still waited for a connection: answered already. */
  private expired = false;
  private readonly res: ServerResponse;

  constructor(
    private readonly o: ReadStreamOptions,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly pool: TierPool,
    private readonly pathAndQuery: string,
    private readonly headers: Headers,
  ) {
    this.res = reply.raw;
  }

  send(member: Member): void {
    this.member = member;
    this.headers.host = member.upstream.host;
    // The tier's timeout bounds the whole wait, a wait for a free connection included (undici's
    // own timeouts start only once a connection carries the read).
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.timedOut(), this.pool.timeoutMs);
    member.client.dispatch({ path: member.upstream.basePath + this.pathAndQuery, method: this.request.method, headers: this.headers as Record<string, string> }, this);
  }

  private timedOut(): void {
    if (this.res.headersSent) return;
    if (this.abort) {
      this.abort(new DeadlineError(this.pool.timeoutMs)); // onError answers 504
      return;
    }
    this.expired = true;
    this.o.fail(this.reply, new DeadlineError(this.pool.timeoutMs));
  }

  onConnect(abort: (err?: Error) => void): void {
    // A client gone before the upstream was asked, or answered 504 while the read waited for a
    // connection: nothing to ask the upstream for.
    if (this.res.destroyed || this.expired) abort(new Error('the client closed the connection'));
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the final status follows
    clearTimeout(this.deadline);
    const res = this.res;
    if (res.destroyed) {
      this.abort?.(new Error('the client closed the connection'));
      return false;
    }
    const headers = rewriteResponseHeaders(undiciUtil.parseHeaders(rawHeaders) as Headers, this.request, this.o.base, this.o.rewriteLocation);
    try {
      res.writeHead(statusCode, headers as Record<string, string | string[]>);
    } catch (err) {
      // A header value Node refuses to write (a control character the upstream's parser let
      // through): nothing has been sent, so the client gets the 502 a broken upstream earns.
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      this.abort?.(err as Error);
      return false;
    }
    this.reply.hijack();
    this.resume = resume;
    // The client leaving mid-body frees the upstream connection at once, not at the body
    // timeout (which an upstream still sending never meets). Fastify's abort hook does not see
    // this case: a GET's request was complete before its response began.
    // (An upstream that broke off the body closed it itself: see onError.)
    res.once('close', () => {
      if (res.writableFinished || (this.request.fhirguard as RequestState).upstreamFailed) return;
      this.o.closedEarly(this.request);
      this.abort?.(new Error('the client closed the connection'));
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // The client reads slower than the upstream sends: undici pauses until the socket drains.
    this.res.once('drain', this.resume as () => void);
    return false;
  }

  onComplete(): void {
    this.res.end();
  }

  onError(err: Error): void {
    clearTimeout(this.deadline);
    const state = this.request.fhirguard as RequestState;
    if (this.res.destroyed || this.expired) return; // the client left first, or was answered 504 already
    if (this.res.headersSent) {
      // Part of the response is on its way: cut the connection, so the client sees a broken
      // body, never a short one that looks whole.
      state.upstreamFailed = true;
      this.o.broke(this.request, err);
      this.res.destroy(err);
      return;
    }
    const member = this.member as Member;
    if (isConnectionError(err)) {
      this.pool.markDown(member, err);
      if (!this.retried) {
        const other = this.pool.pick(member);
        if (other) {
          this.retried = true;
          this.o.onRetry(this.pool.name);
          this.send(other);
          return;
        }
      }
    }
    this.o.fail(this.reply, err);
  }
}
