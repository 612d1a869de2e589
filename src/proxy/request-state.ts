// What the request path learns about one request, carried on the Fastify request from the
// pipeline (classify, policy, validate) to forwarding, error replies and metrics.

import type { Access } from '../auth/access';
import type { Identity } from '../auth/identity';
import type { Interaction } from '../fhir/interaction';
import type { TierConfig } from '../policy/types';
import type { PolicyGeneration } from './policy-generation';

export class RequestState {
  /** The policy the request is decided under, from its first stage to its end (a reload does not change it). */
  generation: PolicyGeneration | undefined = undefined;
  interaction: Interaction | undefined = undefined;
  tier: TierConfig | undefined = undefined;
  /** The body as received, forwarded byte for byte. */
  rawBody: Buffer | undefined = undefined;
  /** The raw query string sent upstream (the client's, minus parameters dropped as lenient). */
  forwardQuery = '';
  /** True when fhirguard refused the request itself (nothing was forwarded). */
  refused = false;
  /** True when the upstream failed (502/503/504 written by fhirguard). */
  upstreamFailed = false;
  /** True when the client closed its connection before the response was complete. */
  clientClosed = false;
  /** performance.now() when the request was handed to the upstream (0: never). */
  upstreamStart = 0;
  /** Who asks: the verified bearer token's identity (policies with authorization). */
  identity: Identity | undefined = undefined;
  /** What the token's scopes let the request do (set once authorized). */
  access: Access | undefined = undefined;
  /** Why fhirguard refused it, for the audit trail. */
  refusal: { reason: string; diagnostics: string } | undefined = undefined;
  /** The patients the request concerned (set by the pipeline when the front door audits). */
  auditPatients: string[] | undefined = undefined;
}

/** The request's state, made on first use (by the pipeline, or by whatever ends the request before it). */
export function requestState(request: { fhirguard: RequestState | null }): RequestState {
  return (request.fhirguard ??= new RequestState());
}

declare module 'fastify' {
  interface FastifyRequest {
    fhirguard: RequestState | null;
  }
}
