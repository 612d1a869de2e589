// The FHIR listener: a Fastify app whose one route, the FHIR base and everything below it,
// runs the request path (pipeline.ts: classify → policy → validate) as its preHandler, and
// whose handler then forwards the request to a member of the tier's pool (forward.ts), or
// answers the front door's own CapabilityStatement. Everything else that can end a request
// (refusals, upstream faults, paths outside the base, unknown methods) ends here as a FHIR
// OperationOutcome.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, type HTTPMethods } from 'fastify';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { Logger } from 'pino';
import { MethodNotAllowedError } from '../fhir/classify';
import { refuse, type FhirError } from '../fhir/outcome';
import type { ProxyMetrics } from '../metrics/registry';
import { RequestState, requestState } from './request-state';
import { FHIR_JSON, sendOutcome, toFhirError, upstreamFault } from './errors';
import type { AuditDestination } from './audit-record';
import { authenticator, type TokenCheck } from './authenticate';
import { RequestLimits } from './limits';
import { limitConnections, type ConnectionLimits } from './connection-limits';
import { Forwarder } from './forward';
import { locationRewriter } from './headers';
import { clientErrorHandler, connectRefusal, expectationRefusal, MAX_HEADER_BYTES } from './http-refusals';
import { observeClientClosed, ObservingLogController } from './observe';
import { refusePlainHttp } from './plain-http-refusal';
import { createPipeline } from './pipeline';
import type { PolicyGeneration, PolicyParts } from './policy-generation';
import type { UpstreamPools } from './pool';
import { requestIdFrom } from './request-id';
import { requestLogger } from './request-logger';
import type { TlsListener } from './tls-listener';
import { closeAfterUpgrade } from './upgrade';

export interface ProxyOptions extends PolicyParts {
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
  /** Connection caps and idle timeouts (connection-limits.ts); Node's defaults when absent (tests). */
  connections?: ConnectionLimits;
  /** Where each handled request's audit record goes (absent: no audit trail). */
  audit?: AuditDestination;
  /** HTTPS (tls-listener.ts); absent: plain HTTP. */
  tls?: TlsListener;
}

/** The FHIR listener and how a checked new policy is put in force. */
export interface ProxyServer {
  app: FastifyInstance;
  /** The policy in force now, with its parts. */
  current(): PolicyParts;
  /** Puts a new policy in force: requests from now on are decided under it, those in flight finish under theirs. */
  usePolicy(parts: PolicyParts): void;
}

/** Every method a FHIR interaction uses, plus those the classifier refuses with 405 itself. */
const ROUTED_METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];

export async function buildProxy(o: ProxyOptions): Promise<ProxyServer> {
  const base = o.base.replace(/\/+$/, '');
  const audit = o.audit ? { to: o.audit, base } : undefined;
  // Headers are limited to 15 KiB, below the 16 KiB most servers (Node, Tomcat, Jetty) accept,
  // so a request fhirguard accepts still fits once it carries X-Forwarded-* and X-Request-Id.
  const http = { requireHostHeader: false, headersTimeout: o.headersTimeoutMs ?? 10_000, connectionsCheckingInterval: 1000, maxHeaderSize: MAX_HEADER_BYTES };
  const app = Fastify({
    loggerInstance: o.logger,
    // fhirguard logs one line per request itself, with tier and interaction, and counts it
    // (observe.ts); Fastify's own request lines are off.
    logController: new ObservingLogController(o.metrics, audit),
    // request.log is bound to the request id but made only when a line is written.
    childLoggerFactory: requestLogger(o.logger),
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
    ...(o.connections ? { keepAliveTimeout: o.connections.keepAliveTimeoutMs, connectionTimeout: o.connections.idleTimeoutMs } : {}),
    // An HTTPS server takes the HTTP server's options with its TLS ones; a handshake is bounded like headers.
    ...(o.tls ? { https: { ...http, ...o.tls.serverOptions(), handshakeTimeout: http.headersTimeout } as HttpsServerOptions } : { http }),
  }) as unknown as FastifyInstance;
  if (o.tls) {
    const server = app.server as unknown as HttpsServer;
    o.tls.attach(server);
    o.tls.onClose(refusePlainHttp(server, o.metrics, o.logger, http.headersTimeout));
  }
  // Before Fastify's own listener: an Upgrade request's answer closes its connection (upgrade.ts).
  app.server.prependListener('request', closeAfterUpgrade);
  app.server.on('checkExpectation', expectationRefusal(o.metrics, o.logger));
  app.server.on('connect', connectRefusal(o.metrics, o.logger));
  if (o.connections) limitConnections(app.server, o.connections, (why) => o.metrics.connectionRefused(why));

  // Every body is kept as the bytes received: the pipeline parses what it must check and
  // the same bytes are forwarded, so what the worker sees is exactly what was validated.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  // The request state is made by the pipeline; a request refused before it (routing, body
  // limits) gets one in refusal(). Its timing is Fastify's own (reply.elapsedTime).
  app.decorateRequest('fhirguard', null);

  const rewriteLocation = locationRewriter(o.pools.all().flatMap((p) => p.members.map((m) => m.upstream)));

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

  const forwarding = {
    pools: o.pools,
    base,
    rewriteLocation,
    onRetry: (tier: string) => o.metrics.retry(tier),
    fail: upstreamFailed,
    refuse: (reply: FastifyReply, error: FhirError) => refusal(reply.request, reply, error),
    broke: (request: FastifyRequest, err: Error) => {
      const tier = request.fhirguard?.tier?.name ?? 'unknown';
      o.metrics.upstreamError(tier, 'connect');
      request.log.warn({ err, tier }, `the '${tier}' upstream broke off a response under way; the client's connection was cut`);
    },
    closedEarly: (request: FastifyRequest) => observeClientClosed(request, o.metrics, audit),
  };

  /** Everything per request that depends on the policy, made once per policy. */
  function generation(parts: PolicyParts): PolicyGeneration {
    const pipeline = createPipeline({ base, policy: parts.policy, metrics: o.metrics, maxDepth: o.maxDepth, audit: audit !== undefined });
    const limits = RequestLimits.of(parts.policy.limits);
    return {
      ...parts,
      preHandler: limited(limits, parts.authorization?.tokens, pipeline),
      forwarder: new Forwarder({ ...forwarding, dropToken: parts.policy.authorization !== undefined }),
      limits,
    };
  }
  let current = generation(o);
  o.metrics.setLimitsSource(() => current.limits);

  // The one read of the policy in force: the request keeps what it got here.
  const decided = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const g = current;
    requestState(request).generation = g;
    g.preHandler(request, reply, done);
  };
  for (const url of routesUnder(base)) app.route({ method: ROUTED_METHODS, url, preHandler: decided, handler: forwardChecked(base) });
  // Public, like the CapabilityStatement: it is how a SMART app finds where to get a token.
  // Under a policy without authorization it is a FHIR path like any other.
  app.route({
    method: ['GET', 'HEAD'],
    url: `${base}/.well-known/smart-configuration`,
    preHandler: (request, reply, done) => {
      const g = current;
      requestState(request).generation = g;
      if (g.authorization) done();
      else g.preHandler(request, reply, done);
    },
    handler: (request, reply) => {
      const smart = (request.fhirguard as RequestState).generation?.authorization?.smartConfiguration;
      if (!smart) return forwardChecked(base)(request, reply);
      const doc = smart.current();
      if (doc === undefined) return refusal(request, reply, refuse(503, 'issuer-unavailable', 'transient', "the issuer's endpoints are not known yet: it has not answered its discovery document"));
      return reply.code(200).header('content-type', 'application/json').header('x-request-id', request.id).header('cache-control', 'max-age=300').send(doc);
    },
  });

  app.addHook('onRequestAbort', (request, done) => {
    observeClientClosed(request, o.metrics, audit);
    done();
  });

  function refusal(request: FastifyRequest, reply: FastifyReply, error: FhirError): void {
    const state = requestState(request);
    state.refused = true;
    state.refusal = { reason: error.reason, diagnostics: error.message };
    o.metrics.refusal(error.reason);
    if (error instanceof MethodNotAllowedError) reply.header('allow', error.allow.join(', '));
    request.log.info({ status: error.status, reason: error.reason, diagnostics: error.message }, 'refused');
    sendOutcome(reply, error);
  }

  return {
    app,
    current: () => current,
    usePolicy(parts) {
      current = generation(parts);
    },
  };
}

type PreHandler = PolicyGeneration['preHandler'];

/**
 * The request path with the policy's limits around the token check: the global limits before
 * it (a flood costs no verification), the client's after it (the client is who the token says).
 */
function limited(limits: RequestLimits | undefined, tokens: TokenCheck | undefined, pipeline: PreHandler): PreHandler {
  const client: PreHandler = limits
    ? (request, reply, done) => {
        const refused = limits.admitClient(request, reply);
        if (refused) done(refused);
        else pipeline(request, reply, done);
      }
    : pipeline;
  const checked = tokens ? authenticator(tokens, client) : client;
  if (!limits) return checked;
  return (request, reply, done) => {
    const refused = limits.admitGlobal(reply);
    if (refused) done(refused);
    else checked(request, reply, done);
  };
}

/** The routes that take the FHIR base and every path below it. */
function routesUnder(base: string): string[] {
  return base === '' ? ['/', '/*'] : [base, `${base}/`, `${base}/*`];
}

/**
 * The route's handler, once the pipeline has checked the request: the front door states its
 * own capabilities (what the policy lets through, not what one backend behind it can do), and
 * every other request goes to its tier.
 */
function forwardChecked(base: string): (request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (request, reply) => {
    const state = request.fhirguard as RequestState;
    const g = state.generation as PolicyGeneration;
    if (g.capabilities && state.interaction?.kind === 'capabilities') {
      return reply.code(200).header('content-type', FHIR_JSON).header('x-request-id', request.id).send(g.capabilities.current());
    }
    const url = request.url;
    const q = url.indexOf('?');
    return g.forwarder.forward(request, reply, (q < 0 ? url : url.slice(0, q)).slice(base.length) || '/');
  };
}

function truncate(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
