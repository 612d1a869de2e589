// The FHIR listener: a Fastify app whose one route, the FHIR base, runs the request path
// (pipeline.ts: classify → policy → validate) as a preHandler of @fastify/http-proxy's
// routes, whose handler then forwards it to a member of the tier's pool: reads streamed on
// undici's dispatch API (read-stream.ts), everything else through reply-from (dispatcher.ts).
// Everything else that can end a request (refusals, upstream faults, paths outside the
// base, unknown methods) ends here as a FHIR OperationOutcome.

import httpProxy from '@fastify/http-proxy';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { MethodNotAllowedError } from '../fhir/classify';
import { refuse, type FhirError } from '../fhir/outcome';
import type { ProxyMetrics } from '../metrics/registry';
import type { Policy } from '../policy';
import { RequestState, requestState } from './request-state';
import { TierDispatcher } from './dispatcher';
import { FHIR_JSON, sendOutcome, toFhirError, upstreamFault } from './errors';
import { forwardRequestHeaders, locationRewriter, rewriteResponseHeaders } from './headers';
import { clientErrorHandler, connectRefusal, expectationRefusal, MAX_HEADER_BYTES } from './http-refusals';
import { observeClientClosed, ObservingLogController } from './observe';
import { createPipeline } from './pipeline';
import type { UpstreamPools } from './pool';
import { ReadStreamer } from './read-stream';
import { requestIdFrom } from './request-id';
import { requestLogger } from './request-logger';
import { closeAfterUpgrade } from './upgrade';

export interface ProxyOptions {
  policy: Policy;
  pools: UpstreamPools;
  metrics: ProxyMetrics;
  logger: Logger;
  /** FHIR base path, e.g. '/fhir' ('' serves FHIR at the root). */
  base: string;
  /** Largest request body accepted, in bytes (413 above). */
  bodyLimit: number;
  /** Deepest JSON nesting accepted in a body (400 above). */
  maxDepth: number;
  /** Time a client has for its request line and headers (slow clients get 408 and are closed). */
  headersTimeoutMs?: number;
  /** Time a client has for its whole request, body included. */
  requestTimeoutMs?: number;
  /** The front door's own CapabilityStatement, answered for `GET [base]/metadata` the policy allows. */
  capabilities?: { current(): string };
}

/** Every method a FHIR interaction uses, plus those the classifier refuses with 405 itself. */
const ROUTED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];

/** The placeholder upstream @fastify/http-proxy needs; the tier's dispatcher replaces it. */
const UNROUTED = 'http://unrouted.fhirguard.invalid';

export async function buildProxy(o: ProxyOptions): Promise<FastifyInstance> {
  const base = o.base.replace(/\/+$/, '');
  const app = Fastify({
    loggerInstance: o.logger as never,
    // fhirguard logs one line per request itself, with tier and interaction, and counts it
    // (observe.ts); Fastify's own request lines are off.
    logController: new ObservingLogController(o.metrics),
    // request.log is bound to the request id but made only when a line is written.
    childLoggerFactory: requestLogger as never,
    bodyLimit: o.bodyLimit,
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    return503OnClosing: true,
    // Long compartment/chain paths are legal FHIR; the classifier bounds them itself.
    routerOptions: { maxParamLength: 2048 },
    // A path the router cannot decode (bad percent-encoding) is refused in FHIR like the rest.
    frameworkErrors: (err, _request, reply) => {
      sendOutcome(reply, toFhirError(err));
    },
    // Framing errors Node's parser finds before a request exists are refused in FHIR too.
    clientErrorHandler: clientErrorHandler(o.metrics, o.logger),
    // Slow clients (slowloris, slow bodies) cannot hold connections: Node ends a request
    // whose headers or whole request take longer than these (408, http-refusals.ts), checked
    // every second. A missing Host is refused by the pipeline as an OperationOutcome (Node's
    // own refusal has no body).
    requestTimeout: o.requestTimeoutMs ?? 60_000,
    // Headers are limited to 15 KiB, below the 16 KiB most servers (Node, Tomcat, Jetty) accept,
    // so a request fhirguard accepts still fits once it carries X-Forwarded-* and X-Request-Id.
    http: { requireHostHeader: false, headersTimeout: o.headersTimeoutMs ?? 10_000, connectionsCheckingInterval: 1000, maxHeaderSize: MAX_HEADER_BYTES },
  });
  // Before Fastify's own listener: an Upgrade request's answer closes its connection (upgrade.ts).
  app.server.prependListener('request', closeAfterUpgrade);
  app.server.on('checkExpectation', expectationRefusal(o.metrics, o.logger));
  app.server.on('connect', connectRefusal(o.metrics, o.logger));

  // Every body is kept as the bytes received: the pipeline parses what it must check and
  // the same bytes are forwarded, so what the worker sees is exactly what was validated.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // The request state is made by the pipeline; a request refused before it (routing, body
  // limits) gets one in refusal(). Its timing is Fastify's own (reply.elapsedTime).
  app.decorateRequest('fhirguard', null);

  const dispatcher = new TierDispatcher(o.pools, { onRetry: (tier) => o.metrics.retry(tier) });
  const rewriteLocation = locationRewriter(o.pools.all().flatMap((p) => p.members.map((m) => m.upstream)));
  const pipeline = createPipeline({ base, policy: o.policy, metrics: o.metrics, maxDepth: o.maxDepth });

  // Set before the proxy plugin registers its routes, which inherit them.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0];
    const underBase = base === '' || path === base || path.startsWith(base + '/');
    const error: FhirError = underBase
      ? refuse(405, 'method-not-allowed', 'not-supported', `${request.method} is not a FHIR RESTful method`)
      : refuse(404, 'unknown-path', 'not-found', `no FHIR endpoint at ${truncate(path)}; the FHIR base is '${base || '/'}'`);
    refusal(request, reply, error);
  });

  app.setErrorHandler((err, request, reply) => {
    const error = toFhirError(err);
    if (error.status >= 500) request.log.error({ err }, 'request failed inside fhirguard');
    refusal(request, reply, error);
  });

  // An upstream failure before the response started: the tier's 502/503/504 OperationOutcome.
  function upstreamFailed(reply: FastifyReply, err: Error): void {
    const state = reply.request.fhirguard;
    const tier = state?.tier;
    const fault = upstreamFault(err, tier?.name ?? 'unknown', tier?.timeoutMs ?? 0);
    if (state) state.upstreamFailed = true;
    o.metrics.upstreamError(tier?.name ?? 'unknown', fault.kind);
    reply.log.warn({ err, tier: tier?.name }, fault.error.message);
    sendOutcome(reply, fault.error);
  }

  const reads = new ReadStreamer({
    pools: o.pools,
    base,
    rewriteLocation,
    onRetry: (tier) => o.metrics.retry(tier),
    fail: upstreamFailed,
    broke: (request, err) => {
      const tier = request.fhirguard?.tier?.name ?? 'unknown';
      o.metrics.upstreamError(tier, 'connect');
      request.log.warn({ err, tier }, `the '${tier}' upstream broke off a response under way; the client's connection was cut`);
    },
    closedEarly: (request) => observeClientClosed(request, o.metrics),
  });

  // The upstream origin is the tier's placeholder, which the dispatcher maps to a member.
  const upstreamOf = (request: FastifyRequest) => dispatcher.originOf(request.fhirguard?.tier?.name ?? '') ?? UNROUTED;
  const forward = forwarder(base, upstreamOf, reads, o.capabilities);
  await app.register(httpProxy, {
    prefix: base || '/',
    // fhirguard logs each request once itself (observe.ts); reply-from's two lines per request are noise.
    disableRequestLogging: true,
    // Empty: given a base, reply-from would send every request to that one origin, and the
    // tier is carried by the origin getUpstream returns.
    upstream: '',
    proxyPayloads: false,
    httpMethods: ROUTED_METHODS,
    preHandler: pipeline,
    undici: dispatcher as never,
    // fhirguard builds the upstream path from the raw URL it checked, never from a
    // re-encoded one, and sends the body bytes it validated.
    handler: (request: FastifyRequest, reply: FastifyReply, _dest: string, options: object) => forward(request, reply, options),
    replyOptions: {
      // http-proxy requires it with an empty upstream; the shared options (forwarder) carry the same.
      getUpstream: upstreamOf,
      rewriteRequestHeaders: (request: FastifyRequest, headers: Record<string, string | string[] | number | undefined>) =>
        forwardRequestHeaders(request, headers, base, request.fhirguard?.rawBody !== undefined) as never,
      rewriteHeaders: (headers: Record<string, string | string[] | number | undefined>, request: FastifyRequest) => rewriteResponseHeaders(headers, request, base, rewriteLocation) as never,
      // Retries are the dispatcher's (another member, idempotent reads only); reply-from's
      // own retry on 503 would resend to the same tier regardless of method.
      retryDelay: () => null,
      onError: (reply: FastifyReply, { error }: { error: Error & { cause?: unknown } }) => upstreamFailed(reply, (error.cause ?? error) as Error),
    },
  } as never);

  app.addHook('onRequestAbort', (request, done) => {
    observeClientClosed(request, o.metrics);
    done();
  });

  function refusal(request: FastifyRequest, reply: FastifyReply, error: FhirError): void {
    requestState(request).refused = true;
    o.metrics.refusal(error.reason);
    if (error instanceof MethodNotAllowedError) reply.header('allow', error.allow.join(', '));
    request.log.info({ status: error.status, reason: error.reason, diagnostics: error.message }, 'refused');
    sendOutcome(reply, error);
  }

  return app as unknown as FastifyInstance;
}

/**
 * Hands a checked request on: reads (GET, HEAD) to the read streamer (read-stream.ts), every
 * other request to reply-from. The options reply-from reads are built once (`shared`: its
 * getUpstream and queryString hooks read the tier and the checked query from the request
 * state); only a request with a body gets an object of its own. The `options` http-proxy
 * passes are its own per-request copy whose getUpstream returns that request's origin, which
 * is why shared gets the request-reading getUpstream instead.
 */
function forwarder(
  base: string,
  getUpstream: (request: FastifyRequest) => string,
  reads: ReadStreamer,
  capabilities: { current(): string } | undefined,
): (request: FastifyRequest, reply: FastifyReply, options: object) => FastifyReply {
  let shared: Record<string, unknown> | undefined;
  return (request, reply, options) => {
    // The front door states its own capabilities: what the policy lets through, not what one
    // backend behind it can do.
    if (capabilities && (request.fhirguard as RequestState).interaction?.kind === 'capabilities') {
      return reply.code(200).header('content-type', FHIR_JSON).header('x-request-id', request.id).send(capabilities.current());
    }
    const url = request.url;
    const q = url.indexOf('?');
    const path = (q < 0 ? url : url.slice(0, q)).slice(base.length) || '/';
    const method = request.method;
    // A body a client sent with a read is not forwarded.
    if (method === 'GET' || method === 'HEAD') return reads.forward(request, reply, path);
    shared ??= { ...(options as Record<string, unknown>), getUpstream, queryString: forwardQueryOf };
    const state = request.fhirguard as RequestState;
    const body = state.rawBody;
    state.upstreamStart = performance.now();
    if (body !== undefined) return reply.from(path, { ...shared, body, contentType: request.headers['content-type'] ?? 'application/fhir+json' } as never);
    return reply.from(path, shared as never);
  };
}

/** reply-from's queryString hook: the raw query the pipeline checked (minus lenient drops). */
function forwardQueryOf(_search: string, _url: string, request: FastifyRequest): string {
  return (request.fhirguard as RequestState).forwardQuery;
}

function truncate(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
