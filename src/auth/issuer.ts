// Talking to the token issuer: its OpenID discovery document (where its keys and endpoints
// are) and JSON answers in general, each bounded in time. Any failure is IssuerUnavailable:
// the caller refuses what it could not check.

import { request } from 'undici';
import { IssuerUnavailable } from './token-errors';

/** Longest wait for the issuer (discovery, JWKS, introspection). */
export const ISSUER_TIMEOUT_MS = 5_000;

export async function getJson(url: string, o: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string } = {}): Promise<Record<string, unknown>> {
  let res;
  try {
    res = await request(url, { method: o.method ?? 'GET', headers: { accept: 'application/json', ...o.headers }, body: o.body, headersTimeout: ISSUER_TIMEOUT_MS, bodyTimeout: ISSUER_TIMEOUT_MS });
  } catch (e) {
    throw new IssuerUnavailable(`${url} could not be reached (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new IssuerUnavailable(`${url} answered ${res.statusCode}`);
  try {
    const json = JSON.parse(text) as unknown;
    if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new IssuerUnavailable(`${url} did not answer a JSON object`);
}

/** What fhirguard reads of an OpenID Provider's discovery document. */
export interface Discovery {
  jwks_uri?: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  introspection_endpoint?: string;
  revocation_endpoint?: string;
  registration_endpoint?: string;
  grant_types_supported?: string[];
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
}

/** The issuer's `/.well-known/openid-configuration`; its issuer must be the one asked. */
export async function discovery(issuer: string): Promise<Discovery> {
  const doc = await getJson(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  if (doc.issuer !== undefined && doc.issuer !== issuer) throw new IssuerUnavailable(`the discovery document names issuer ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(issuer)}`);
  return doc as Discovery;
}
