// Who is asking: what a verified access token says about the client, the user and the launch
// context, with the token's SMART scopes parsed once. Made by the token verifier, cached with
// the token, read by every later decision about a request that carries it.

import type { Grants } from './scopes';

export interface Identity {
  /** The token's issuer (`iss`, or the configured issuer for introspected tokens without one). */
  issuer: string;
  /** The OAuth client (`client_id`, or `azp`). */
  clientId?: string;
  /** The subject (`sub`): the user, or the client itself for client credentials. */
  subject?: string;
  /** The user's FHIR resource (`fhirUser` claim), e.g. Practitioner/123. */
  fhirUser?: string;
  /** The launch patient's id (the configured claim), when the token carries one. */
  patient?: string;
  /** The granted scopes, as the token lists them. */
  scopes: readonly string[];
  grants: Grants;
  /** When the token stops being accepted (epoch ms). */
  expiresAt: number;
  /** How the token was verified. */
  verifiedBy: 'jwt' | 'introspection';
}
