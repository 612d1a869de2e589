// The policy's `authorization:` block: SMART on FHIR at the front door. With it, every request
// but the CapabilityStatement and the SMART configuration needs a bearer token from the
// issuer, and its scopes decide what it may read and write; without it, fhirguard decides by
// what is asked only (and says so loudly at start).
//
//   authorization:
//     issuer: https://idp.hospital.example/realms/fhir   # every token's iss
//     audience: https://fhir.hospital.example/fhir       # every token's aud: the FHIR base URL
//     jwksUri: https://idp.hospital.example/.../certs    # default: from the issuer's discovery
//     algorithms: [RS256, ES256]                         # default: every asymmetric JWS algorithm
//     clockSkewSeconds: 30
//     patientClaim: patient                              # the launch patient's claim
//     introspection:                                     # opaque tokens (RFC 7662)
//       endpoint: https://idp.hospital.example/.../introspect
//       clientId: fhirguard
//       clientSecretFile: secrets/introspection          # relative: the policy file's directory
//     smart:                                             # .well-known/smart-configuration
//       authorizationEndpoint: https://idp.hospital.example/.../auth
//       tokenEndpoint: https://idp.hospital.example/.../token
//       capabilities: [launch-standalone, client-public, permission-v2, context-standalone-patient]

import path from 'node:path';
import type { Field, Spec } from './yaml-check';

/** JWS algorithms a token may be signed with: asymmetric only (an HMAC key would be the issuer's public key). */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
export const DEFAULT_INTROSPECTION_CACHE_SECONDS = 60;

export interface AuthorizationFields {
  issuer: string;
  audience: string;
  jwksUri?: string;
  algorithms?: TokenAlgorithm[];
  clockSkewSeconds?: number;
  patientClaim?: string;
  fhirUserClaim?: string;
  introspection?: { endpoint: string; clientId: string; clientSecretFile: string; cacheSeconds?: number };
  smart?: { authorizationEndpoint?: string; tokenEndpoint?: string; capabilities?: string[]; scopesSupported?: string[] };
}

export interface AuthorizationConfig {
  issuer: string;
  audience: string;
  /** Absent: the issuer's OpenID discovery document names it. */
  jwksUri?: string;
  algorithms: TokenAlgorithm[];
  clockSkewSeconds: number;
  patientClaim: string;
  fhirUserClaim: string;
  introspection?: { endpoint: string; clientId: string; clientSecretFile: string; cacheSeconds: number };
  smart: { authorizationEndpoint?: string; tokenEndpoint?: string; capabilities: string[]; scopesSupported?: string[] };
}

function httpUrl(v: string): string | undefined {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return `${JSON.stringify(v)} is not a URL`;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return `${JSON.stringify(v)} is not an http(s) URL`;
  if (u.hash || u.username || u.password) return `${JSON.stringify(v)}: no fragment or credentials in the URL`;
  return undefined;
}

const url: Spec = { type: 'string', expect: 'an https URL', check: httpUrl };
const claim: Spec = { type: 'string', expect: 'a claim name', check: (v) => (/^[A-Za-z_][A-Za-z0-9_:.-]*$/.test(v) ? undefined : `${JSON.stringify(v)} is not a claim name`) };
const algorithm: Spec = {
  type: 'string',
  expect: 'a JWS algorithm',
  check: (v) =>
    (TOKEN_ALGORITHMS as readonly string[]).includes(v)
      ? undefined
      : `${JSON.stringify(v)} is not accepted: tokens must be signed with one of ${TOKEN_ALGORITHMS.join(', ')} (never none, never an HMAC)`,
};
const capability: Spec = { type: 'string', expect: 'a SMART capability', check: (v) => (/^[a-z0-9-]+$/.test(v) ? undefined : `${JSON.stringify(v)} is not a SMART capability code`) };

export const AUTHORIZATION_FIELD: Field = {
  spec: {
    type: 'object',
    fields: {
      issuer: { spec: url, required: true, doc: "the token issuer (every token's iss); its discovery document names the JWKS" },
      audience: { spec: url, required: true, doc: "what every token's aud must name: the FHIR base URL clients use" },
      jwksUri: { spec: url, doc: "the issuer's JSON Web Key Set (default: from the issuer's /.well-known/openid-configuration)" },
      algorithms: { spec: { type: 'list', items: algorithm, minItems: 1, unique: true }, doc: `JWS algorithms accepted (default: ${TOKEN_ALGORITHMS.join(', ')})` },
      clockSkewSeconds: { spec: { type: 'integer', min: 0, max: 300 }, doc: `leeway for exp and nbf (default ${DEFAULT_CLOCK_SKEW_SECONDS})` },
      patientClaim: { spec: claim, doc: 'the claim holding the launch patient (default patient)' },
      fhirUserClaim: { spec: claim, doc: "the claim holding the user's FHIR resource (default fhirUser)" },
      introspection: {
        spec: {
          type: 'object',
          fields: {
            endpoint: { spec: url, required: true, doc: 'the RFC 7662 introspection endpoint' },
            clientId: { spec: { type: 'string', expect: 'a client id' }, required: true, doc: "fhirguard's client id at the issuer" },
            clientSecretFile: { spec: { type: 'string', expect: 'a file' }, required: true, doc: "a file holding fhirguard's client secret (first line)" },
            cacheSeconds: {
              spec: { type: 'integer', min: 1, max: 3600 },
              doc: `longest an introspection answer is reused, within the token's lifetime (default ${DEFAULT_INTROSPECTION_CACHE_SECONDS})`,
            },
          },
        },
        doc: 'opaque (non-JWT) tokens are checked with the issuer (RFC 7662)',
      },
      smart: {
        spec: {
          type: 'object',
          fields: {
            authorizationEndpoint: { spec: url, doc: "the issuer's authorization endpoint, published to SMART apps" },
            tokenEndpoint: { spec: url, doc: "the issuer's token endpoint, published to SMART apps" },
            capabilities: { spec: { type: 'list', items: capability, unique: true }, doc: 'SMART capabilities published in .well-known/smart-configuration' },
            scopesSupported: { spec: { type: 'list', items: { type: 'string', expect: 'a scope' }, unique: true }, doc: 'scopes published in .well-known/smart-configuration' },
          },
        },
        doc: "what [base]/.well-known/smart-configuration publishes (endpoints default to the issuer's discovery)",
      },
    },
  },
  doc: 'SMART on FHIR: bearer tokens from this issuer, scopes decide (absent: no authorization)',
};

/** Defaults, and the secret file's path made absolute against the policy file's directory. */
export function compileAuthorization(fields: AuthorizationFields, file: string): AuthorizationConfig {
  const dir = path.dirname(path.resolve(file));
  return {
    issuer: fields.issuer,
    audience: fields.audience,
    ...(fields.jwksUri ? { jwksUri: fields.jwksUri } : {}),
    algorithms: fields.algorithms ?? [...TOKEN_ALGORITHMS],
    clockSkewSeconds: fields.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS,
    patientClaim: fields.patientClaim ?? 'patient',
    fhirUserClaim: fields.fhirUserClaim ?? 'fhirUser',
    ...(fields.introspection
      ? {
          introspection: {
            endpoint: fields.introspection.endpoint,
            clientId: fields.introspection.clientId,
            clientSecretFile: path.resolve(dir, fields.introspection.clientSecretFile),
            cacheSeconds: fields.introspection.cacheSeconds ?? DEFAULT_INTROSPECTION_CACHE_SECONDS,
          },
        }
      : {}),
    smart: {
      ...(fields.smart?.authorizationEndpoint ? { authorizationEndpoint: fields.smart.authorizationEndpoint } : {}),
      ...(fields.smart?.tokenEndpoint ? { tokenEndpoint: fields.smart.tokenEndpoint } : {}),
      capabilities: fields.smart?.capabilities ?? ['launch-standalone', 'client-public', 'client-confidential-symmetric', 'context-standalone-patient', 'permission-v1', 'permission-v2'],
      ...(fields.smart?.scopesSupported ? { scopesSupported: fields.smart.scopesSupported } : {}),
    },
  };
}
