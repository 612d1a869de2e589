// Every checked request reaches a member of its tier here, whatever its method, on undici's
// dispatch API: a write carries the exact bytes the pipeline validated, the upstream's status
// and headers become the client's as soon as they arrive, and each body chunk is written to
// the client's socket as undici hands it over, with the client's backpressure pausing the
// upstream.
//
// Why the dispatch API rather than a stream per response (undici's request(), as
// @fastify/reply-from uses it): a Readable per response, piped by Fastify with two
// end-of-stream watchers, cost more per request than all of fhirguard's FHIR work together
// (bench:proxy keeps the comparison with a bare @fastify/http-proxy).
//
// A request that fails before its response started goes once to another healthy member when
// the failover rule allows it (failover.ts); otherwise it becomes the tier's OperationOutcome
// (fail). After the response started, the client's connection is cut, so a truncated body
// cannot pass for a whole one.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { util as undiciUtil, type Dispatcher } from 'undici';
import { CURRENT_VERSION_CHECKED, patientNotFound, RESPONSE_CHECKED } from '../auth/patient-access';
import { checkPatientResponse, type Checked } from '../auth/patient-response';
import type { FhirError } from '../fhir/outcome';
import { DeadlineError, NoHealthyMemberError, uncheckable } from './errors';
import { mayGoElsewhere, memberUnreachable } from './failover';
import { forwardRequestHeaders, rewriteResponseHeaders, type LocationRewrite } from './headers';
import { checkCurrentVersion } from './patient-writes';
import type { Member, TierPool, UpstreamPools } from './pool';
import type { RequestState } from './request-state';

export interface ForwardOptions {
  pools: UpstreamPools;
  /** The FHIR base path, e.g. '/fhir'. */
  base: string;
  rewriteLocation: LocationRewrite;
  /** Authorization is the front door's: the client's token is not forwarded. */
  dropToken: boolean;
  /** A request went to another member after the first one failed. */
  onRetry(tier: string): void;
  /** Answers a request that failed before its response started (the upstream fault's OperationOutcome). */
  fail(reply: FastifyReply, err: Error): void;
  /** Answers with a refusal of fhirguard's own (an answer a patient-scoped client may not see). */
  refuse(reply: FastifyReply, error: FhirError): void;
  /** The upstream broke off a response already under way (the client's connection is cut). */
  broke(request: FastifyRequest, err: Error): void;
  /** The client's connection closed before its response was complete. */
  closedEarly(request: FastifyRequest): void;
}

type Headers = Record<string, string | string[] | number | undefined>;

/** Judges an upstream answer before the client gets any of it. */
interface ResponseCheck {
  /** Whether an answer with this status is held for judging (else it streams as it comes). */
  holds(status: number): boolean;
  judge(status: number, body: Buffer): Checked;
}

const ALWAYS = (): boolean => true;
const NOT_FOUND_OR_GONE = (status: number): boolean => status === 404 || status === 410;

/** Largest answer held for a check; a larger one is not passed on. */
const MAX_CHECKED_BYTES = 32 * 2 ** 20;

/** The type a forwarded body is labelled with when its client gave none (only an interaction that takes no body lets one through). */
const DEFAULT_BODY_TYPE = 'application/fhir+json';

export class Forwarder {
  constructor(private readonly o: ForwardOptions) {}

  /** Sends a checked request to a member of its tier; `path` is below the base, without the query. */
  forward(request: FastifyRequest, reply: FastifyReply, path: string): FastifyReply {
    const state = request.fhirguard as RequestState;
    const pool = this.o.pools.get(state.tier?.name ?? '');
    const member = pool?.pick();
    if (!pool || !member) {
      this.o.fail(reply, new NoHealthyMemberError(state.tier?.name ?? 'unknown', pool?.unavailable, pool?.down));
      return reply;
    }
    const method = request.method;
    // A body a client sent with a read is not forwarded.
    const body = method === 'GET' || method === 'HEAD' ? undefined : state.rawBody;
    const headers = forwardRequestHeaders(request, request.headers as Headers, this.o.base, body !== undefined, this.o.dropToken);
    if (body !== undefined) headers['content-type'] ??= DEFAULT_BODY_TYPE;
    const query = state.forwardQuery;
    state.upstreamStart = performance.now();
    const exchange = new Exchange(this.o, request, reply, pool, query ? `${path}?${query}` : path, headers, body, responseCheck(state));
    const patient = state.access?.patient;
    const interaction = state.interaction;
    if (patient !== undefined && interaction && CURRENT_VERSION_CHECKED.has(interaction.kind)) {
      const clientIfMatch = typeof headers['if-match'] === 'string' ? headers['if-match'] : undefined;
      void checkCurrentVersion(interaction, member, pool.timeoutMs, patient, body, clientIfMatch).then((check) => {
        if ('refusal' in check) this.o.refuse(reply, check.refusal);
        else if ('failure' in check) this.o.fail(reply, check.failure);
        else {
          if (check.ifMatch !== undefined) headers['if-match'] = check.ifMatch;
          exchange.send(member);
        }
      });
      return reply;
    }
    exchange.send(member);
    return reply;
  }
}

/** How the answer to a request restricted to a patient's compartment is checked; undefined for every other request. */
function responseCheck(state: RequestState): ResponseCheck | undefined {
  const patient = state.access?.patient;
  const interaction = state.interaction;
  if (patient === undefined || !interaction || !RESPONSE_CHECKED.has(interaction.kind)) return undefined;
  // The patient's own record, whose id was checked before sending: only an upstream's own
  // "not found" or "gone" has to become the uniform answer.
  const own = (interaction.kind === 'read' || interaction.kind === 'vread') && interaction.resourceType === 'Patient' && interaction.id === patient;
  return { holds: own ? NOT_FOUND_OR_GONE : ALWAYS, judge: (status, body) => checkPatientResponse(interaction, status, body, patient) };
}

/** An upstream answer held back until it is checked. */
interface Held {
  status: number;
  headers: Headers;
  chunks: Buffer[];
  bytes: number;
}

/** One request on its way: undici's handler for it (the pre-v7 callback form, which undici calls directly). */
class Exchange implements Dispatcher.DispatchHandler {
  private member: Member | undefined;
  private retried = false;
  private abort: ((err?: Error) => void) | undefined;
  private resume: (() => void) | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** The tier's timeout passed while the request still waited for a connection: answered already. */
  private expired = false;
  private held: Held | undefined;
  private readonly res: ServerResponse;

  constructor(
    private readonly o: ForwardOptions,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly pool: TierPool,
    private readonly pathAndQuery: string,
    private readonly headers: Headers,
    private readonly body: Buffer | undefined,
    private readonly check: ResponseCheck | undefined,
  ) {
    this.res = reply.raw;
  }

  send(member: Member): void {
    this.member = member;
    this.headers.host = member.upstream.host;
    // The tier's timeout bounds the whole wait, a wait for a free connection included (undici's
    // own timeouts start only once a connection carries the request). A request still waiting
    // when it passes is answered 504 and never sent.
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.timedOut(), this.pool.timeoutMs);
    member.client.dispatch(
      { path: member.upstream.basePath + this.pathAndQuery, method: this.request.method as Dispatcher.HttpMethod, headers: this.headers as Record<string, string>, body: this.body },
      this,
    );
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
    // A client gone before the upstream was asked, or answered 504 while the request waited
    // for a connection: nothing to ask the upstream for.
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
    if (this.check?.holds(statusCode)) {
      this.held = { status: statusCode, headers, chunks: [], bytes: 0 };
      return true;
    }
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
    // this case: the request was complete before its response began.
    // (An upstream that broke off the body closed it itself: see onError.)
    res.once('close', () => {
      if (res.writableFinished || (this.request.fhirguard as RequestState).upstreamFailed) return;
      this.o.closedEarly(this.request);
      this.abort?.(new Error('the client closed the connection'));
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    const held = this.held;
    if (held) {
      held.bytes += chunk.length;
      if (held.bytes > MAX_CHECKED_BYTES) {
        this.held = undefined;
        this.abort?.(uncheckable(`the answer is larger than the ${MAX_CHECKED_BYTES / 2 ** 20} MiB fhirguard checks`));
        return false;
      }
      held.chunks.push(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    // The client reads slower than the upstream sends: undici pauses until the socket drains.
    this.res.once('drain', this.resume as () => void);
    return false;
  }

  onComplete(): void {
    if (this.held) this.release(this.held);
    else this.res.end();
  }

  /** Sends a held answer as its check says: as it came, filtered, or as not found. */
  private release(held: Held): void {
    this.held = undefined;
    if (this.res.destroyed) return;
    const checked = (this.check as ResponseCheck).judge(held.status, Buffer.concat(held.chunks));
    if (checked.kind === 'not-found') return this.o.refuse(this.reply, patientNotFound());
    if (checked.kind === 'unreadable') return this.o.fail(this.reply, uncheckable('the answer is not JSON'));
    const body = checked.kind === 'replace' ? checked.body : Buffer.concat(held.chunks);
    const headers = { ...held.headers, 'content-length': String(body.length) };
    try {
      this.res.writeHead(held.status, headers as Record<string, string | string[]>);
    } catch (err) {
      for (const name of this.res.getHeaderNames()) this.res.removeHeader(name);
      return this.o.fail(this.reply, err as Error);
    }
    this.reply.hijack();
    this.res.end(body);
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
    if (memberUnreachable(err)) {
      this.pool.markDown(member, err);
      const other = !this.retried && mayGoElsewhere(this.request.method, err) ? this.pool.pick(member) : undefined;
      if (other) {
        this.retried = true;
        this.o.onRetry(this.pool.name);
        this.send(other);
        return;
      }
    }
    this.o.fail(this.reply, err);
  }
}
