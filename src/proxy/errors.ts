// Where every refusal and upstream fault becomes a FHIR OperationOutcome reply: FhirErrors
// from the pipeline, Fastify's own errors (body too large, bad URL, bad content length),
// and upstream failures (502 connection, 503 no healthy member, 504 timeout).

import type { FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, refuse } from '../fhir/outcome';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/**
 * Raised by the forwarder when a tier has no member that passes its health check;
 * `unavailable`: why, when the agent said so (its workers' starts were refused).
 */
export class NoHealthyMemberError extends Error {
  readonly code = 'FHIRGUARD_NO_HEALTHY_MEMBER';
  constructor(
    readonly tier: string,
    readonly unavailable?: string,
    /** What the agent said ended its workers' last runs (a profile's kill, a start that timed out). */
    readonly down?: string,
  ) {
    super(`no healthy upstream in tier '${tier}'${unavailable ? `: ${unavailable}` : ''}`);
  }
}

/** A header value shown in a diagnostic: bounded, and without what a log or terminal would act on. */
function shown(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 61)}...` : clean;
}

/**
 * The refusals the front door makes at the HTTP level, before a request is a FHIR
 * interaction (request-head.ts, http-refusals.ts, the pipeline's `_method`): each one's
 * status, reason (the refusals metric's label) and diagnostic, in one place.
 */
export const httpRefusal = {
  malformed: (detail: string) => refuse(400, 'malformed-http', 'structure', `the request is not well-formed HTTP/1.1 (${detail}); the connection is closed`),
  headersTooLarge: (limitBytes: number) => refuse(431, 'headers-too-large', 'too-long', `the request line and headers exceed the ${limitBytes / 1024} KiB the front door accepts`),
  tooManyHeaders: (count: number, limit: number) => refuse(431, 'too-many-headers', 'too-long', `the request has ${count} header fields; the front door accepts at most ${limit}`),
  requestTimeout: () => refuse(408, 'request-timeout', 'timeout', 'the request did not arrive in time; the connection is closed'),
  chunkExtensionsTooLarge: () => refuse(413, 'chunk-extensions-too-large', 'too-long', 'chunk extensions exceed what the front door accepts'),
  expectationFailed: (value: string) => refuse(417, 'expectation-failed', 'not-supported', `Expect: ${shown(value)} cannot be met; the front door meets only Expect: 100-continue`),
  plainHttp: () => refuse(400, 'plain-http', 'security', 'this port speaks HTTPS only: send the request to the same address with https://'),
  connect: () => refuse(405, 'method-not-allowed', 'not-supported', 'CONNECT is not a FHIR RESTful method: the front door opens no tunnels'),
  httpVersion: (version: string) => refuse(505, 'http-version', 'not-supported', `HTTP/${shown(version)} is not supported: send HTTP/1.1`),
  missingHost: () => refuse(400, 'missing-host', 'invalid', 'an HTTP/1.1 request must carry a Host header'),
  duplicateHost: () => refuse(400, 'duplicate-host', 'invalid', 'the request carries more than one Host header'),
  badHost: (value: string) => refuse(400, 'bad-host', 'invalid', `Host '${shown(value)}' is not a host name or address with an optional port`),
  contentEncoding: (coding: string) => refuse(415, 'content-encoding', 'not-supported', `Content-Encoding '${shown(coding)}' is not accepted: send the body uncoded`),
  afterUpgrade: () =>
    refuse(400, 'after-upgrade', 'not-supported', 'an earlier request on this connection asked for an Upgrade, so the connection closes after its answer: send this request on a new connection'),
  methodOverride: () => refuse(400, 'method-override', 'not-supported', "the '_method' parameter is not accepted: send the interaction with its own HTTP method"),
} as const;

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

export function codeOf(err: unknown): string {
  return (err as { code?: unknown })?.code ? String((err as { code: unknown }).code) : '';
}

/** An upstream answer fhirguard had to check for a patient-scoped client and could not (502). */
export class UncheckableAnswer extends Error {
  readonly code = 'FHIRGUARD_UNCHECKABLE';
}

export function uncheckable(why: string): UncheckableAnswer {
  return new UncheckableAnswer(`the upstream's answer could not be checked against the patient's compartment: ${why}`);
}

/** A request whose tier's timeout passed before its upstream answered, wherever it waited. */
export class DeadlineError extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

export type UpstreamFaultKind = 'connect' | 'timeout' | 'unavailable' | 'refused';

/** The OperationOutcome for an upstream failure; `err` is what the HTTP client reported. */
export function upstreamFault(err: unknown, tier: string, timeoutMs: number): { error: FhirError; kind: UpstreamFaultKind } {
  if (err instanceof NoHealthyMemberError && err.unavailable) {
    // Fail closed: the agent would not start the tier's workers; no request reaches one.
    return {
      kind: 'refused',
      error: refuse(503, 'tier-refused', 'transient', `tier '${tier}' is unavailable: the agent refused to start its workers: ${err.unavailable}`),
    };
  }
  if (err instanceof NoHealthyMemberError) {
    return {
      kind: 'unavailable',
      error: refuse(503, 'no-healthy-upstream', 'transient', `tier '${tier}' has no healthy upstream${err.down ? ` (${err.down})` : ''}; try again later`),
    };
  }
  if (err instanceof UncheckableAnswer) {
    return { kind: 'connect', error: refuse(502, 'upstream-failed', 'transient', `the '${tier}' upstream's answer was not passed on: ${err.message}`) };
  }
  const code = codeOf(err);
  if (TIMEOUT_CODES.has(code)) {
    return {
      kind: 'timeout',
      error: refuse(504, 'upstream-timeout', 'timeout', `the '${tier}' upstream did not answer within ${timeoutMs} ms`),
    };
  }
  return {
    kind: 'connect',
    error: refuse(502, 'upstream-failed', 'transient', `the '${tier}' upstream could not be reached or broke the connection (${code || 'error'})`),
  };
}

/** Fastify's own request errors, as FHIR refusals. */
const FASTIFY_ERRORS: Record<string, (err: Error) => FhirError> = {
  FST_ERR_CTP_BODY_TOO_LARGE: () => refuse(413, 'body-too-large', 'too-long', 'request body is larger than the configured limit'),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => refuse(415, 'unsupported-media-type', 'not-supported', 'unsupported or malformed Content-Type'),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => refuse(400, 'bad-request', 'invalid', 'Content-Length does not match the body'),
  FST_ERR_CTP_INVALID_TYPE: () => refuse(415, 'unsupported-media-type', 'not-supported', 'malformed Content-Type'),
  FST_ERR_BAD_URL: () => refuse(400, 'bad-url', 'invalid', 'the URL is not valid (bad percent-encoding)'),
  FST_ERR_MAX_PARAM_LENGTH: () => refuse(414, 'bad-url', 'too-long', 'the URL path is too long'),
};

/** Any error reaching the reply: a FhirError as is, anything else mapped or a 500. */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const code = codeOf(err);
  const mapped = FASTIFY_ERRORS[code];
  if (mapped) return mapped(err as Error);
  const status = Number((err as { statusCode?: unknown })?.statusCode);
  if (status >= 400 && status < 500) {
    return refuse(status, 'bad-request', 'invalid', (err as Error).message || 'bad request');
  }
  return refuse(500, 'internal-error', 'exception', 'fhirguard failed to handle this request; see its log for the request id');
}

export function sendOutcome(reply: FastifyReply, error: FhirError): FastifyReply {
  if (error.status === 405 && !reply.hasHeader('allow')) reply.header('allow', 'GET, HEAD, POST, PUT, PATCH, DELETE');
  if (error.status === 503) reply.header('retry-after', '1');
  if (error.headers) reply.headers(error.headers);
  // A refused request keeps its id, so the client can quote it against fhirguard's log.
  reply.header('x-request-id', reply.request.id);
  return reply.code(error.status).header('content-type', FHIR_JSON).send(JSON.stringify(error.toOutcome()));
}

/** The request was for a path under the FHIR base with a method no FHIR interaction uses. */
export function methodNotAllowed(request: FastifyRequest): FhirError {
  return refuse(405, 'method-not-allowed', 'not-supported', `${request.method} is not a FHIR RESTful method`);
}
