// The refusals of authorization, each with the WWW-Authenticate challenge RFC 6750 §3 gives it:
// no token (401, a bare challenge), a token that is not good (401 invalid_token), a token whose
// scopes fall short (403 insufficient_scope, with the scope that would do). Each is still a FHIR
// OperationOutcome, like every refusal of the front door.

import { type FhirError, refuse } from '../fhir/outcome';

/** Quotes a value for an auth-param: no quotes, backslashes or control characters inside. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"\x00-\x1f\x7f]/g, ' ')}"`;
}

function challenge(error: FhirError, params: Record<string, string>): FhirError {
  const list = Object.entries(params).map(([k, v]) => `${k}=${quoted(v)}`);
  error.headers = { 'www-authenticate': list.length > 0 ? `Bearer ${list.join(', ')}` : 'Bearer' };
  return error;
}

export function noToken(): FhirError {
  return challenge(refuse(401, 'no-token', 'login', 'this FHIR server needs an OAuth 2.0 bearer token (Authorization: Bearer <token>) from its issuer'), {});
}

export function invalidToken(why: string): FhirError {
  return challenge(refuse(401, 'invalid-token', 'login', `the bearer token is not accepted: ${why}`), { error: 'invalid_token', error_description: why });
}

export function insufficientScope(why: string, scopes: readonly string[]): FhirError {
  return challenge(refuse(403, 'insufficient-scope', 'forbidden', why), { error: 'insufficient_scope', error_description: why, scope: scopes.join(' ') });
}

export function tokenInQuery(): FhirError {
  return refuse(400, 'token-in-query', 'security', 'access_token in the query is not accepted (URLs end up in logs): send the token in the Authorization header');
}

export function issuerUnavailable(why: string): FhirError {
  return refuse(503, 'issuer-unavailable', 'transient', `the token could not be checked: ${why}; try again later`);
}
