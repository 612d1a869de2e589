// Who asks, in front of the request path (one preHandler with it): a bearer token in the Authorization header is
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

/** The last Authorization header a connection sent and whose identity it was. */
interface LastToken {
  header: string;
  identity: Identity;
}

type PreHandler = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

/** The request path with the token check in front: `then` (the pipeline) runs once the identity is known. */
export function authenticator(verifier: TokenCheck, then: PreHandler): PreHandler {
  // A client sends the same token on every request of a connection: the header it sent last,
  // and whose it was, are kept with the connection, so a repeated one is a string comparison.
  const lastOnConnection = new WeakMap<object, LastToken>();
  return function authenticate(request, reply, done) {
    const header = request.headers.authorization;
    if (header === undefined) return then(request, reply, done);
    const state = requestState(request);
    const socket = request.raw.socket;
    const last = lastOnConnection.get(socket);
    if (last !== undefined && last.header === header && last.identity.expiresAt > Date.now()) {
      state.identity = last.identity;
      return then(request, reply, done);
    }
    const m = BEARER.exec(header);
    if (!m) return done(invalidToken('the Authorization header is not "Bearer <token>"'));
    const token = m[1];
    const known = verifier.cached(token);
    if (known) {
      state.identity = known;
      lastOnConnection.set(socket, { header, identity: known });
      return then(request, reply, done);
    }
    verifier.verify(token).then(
      (identity) => {
        state.identity = identity;
        lastOnConnection.set(socket, { header, identity });
        then(request, reply, done);
      },
      (err: unknown) => done(failure(err)),
    );
  };
}
