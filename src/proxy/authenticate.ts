// Who asks, before the request path runs: a bearer token in the Authorization header is
// verified (src/auth/tokens.ts) and its identity put on the request state. A token seen before
// is one Map lookup; a new one waits for the issuer's keys or introspection. A request without
// a token passes on here: the pipeline refuses it once it knows the request is not for the
// CapabilityStatement, which is public.

import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { invalidToken, issuerUnavailable } from '../auth/auth-errors';
import type { Identity } from '../auth/identity';
import { InvalidToken, IssuerUnavailable } from '../auth/token-errors';
import { requestState } from './request-state';

/** RFC 6750 §2.1: `Bearer` and a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

function failure(err: unknown): Error {
  if (err instanceof InvalidToken) return invalidToken(err.message);
  if (err instanceof IssuerUnavailable) return issuerUnavailable(err.message);
  return err as Error;
}

/** What the request path needs of the token verifier (src/auth/tokens.ts, loaded only with authorization). */
export interface TokenCheck {
  cached(token: string): Identity | undefined;
  verify(token: string): Promise<Identity>;
}

export function authenticator(verifier: TokenCheck) {
  return function authenticate(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const header = request.headers.authorization;
    if (header === undefined) return done();
    const m = BEARER.exec(header);
    if (!m) return done(invalidToken('the Authorization header is not "Bearer <token>"'));
    const token = m[1];
    const state = requestState(request);
    const known = verifier.cached(token);
    if (known) {
      state.identity = known;
      return done();
    }
    verifier.verify(token).then(
      (identity) => {
        state.identity = identity;
        done();
      },
      (err: unknown) => done(failure(err)),
    );
  };
}
