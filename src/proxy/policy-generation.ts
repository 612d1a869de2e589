// One policy's request path: what a policy makes of the front door (its decisions, its token
// check, its CapabilityStatement, whether the client's token is forwarded), built whole before
// it serves a request and put in force by one assignment. A request keeps the generation it
// started under to its end, so a reload never decides half a request under each policy.

import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Policy } from '../policy';
import type { TokenCheck } from './authenticate';
import type { Forwarder } from './forward';
import type { RequestLimits } from './limits';

/** What a policy brings that is made outside the request path (run.ts builds them). */
export interface PolicyParts {
  policy: Policy;
  /** The front door's own CapabilityStatement, answered for `GET [base]/metadata` the policy allows. */
  capabilities?: { current(): string };
  /** With the policy's authorization: the token check and `.well-known/smart-configuration`. */
  authorization?: { tokens: TokenCheck; smartConfiguration: { current(): string | undefined } };
}

export interface PolicyGeneration extends PolicyParts {
  /** Token check (with authorization) and the pipeline: classify → policy → validate. */
  preHandler(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void;
  forwarder: Forwarder;
  /** The policy's limits; undefined when it sets none. */
  limits: RequestLimits | undefined;
}
