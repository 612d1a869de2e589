// Bearer tokens checked against the issuer, and remembered: a token seen before costs one Map
// lookup until it expires. JWT access tokens are verified with jose against the issuer's JWKS
// (found through its OpenID discovery document unless configured): only the configured
// asymmetric algorithms (never `none`, never an HMAC, whose key would be the public one), the
// issuer, the audience, exp and nbf with the configured leeway. A token signed with a key id
// the JWKS does not hold makes jose fetch the JWKS again, at most once per cooldown. Opaque
// tokens go to the issuer's introspection endpoint (RFC 7662), and the answer is reused no
// longer than the token lives, nor than the configured cache time. When the issuer cannot be
// reached, the token is not accepted (IssuerUnavailable): fhirguard fails closed.

import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthorizationConfig } from '../policy/authorization';
import type { Identity } from './identity';
import { discovery, getJson, ISSUER_TIMEOUT_MS } from './issuer';
import { InvalidToken, IssuerUnavailable } from './token-errors';
import { parseScopes } from './scopes';

/** Most tokens remembered at once; the oldest are forgotten first. */
const CACHE_ENTRIES = 10_000;
/** A JWKS is fetched again for an unknown key id at most this often (a key rotation waits no longer). */
const JWKS_COOLDOWN_MS = 5_000;
/** A JWKS is reused this long before it is fetched again. */
const JWKS_MAX_AGE_MS = 10 * 60_000;

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

type KeySet = ReturnType<typeof createRemoteJWKSet>;

function stringClaim(payload: Record<string, unknown>, name: string): string | undefined {
  const v = payload[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A patient claim may be an id or a reference (Patient/123): the id is kept. */
function patientId(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const id = value.startsWith('Patient/') ? value.slice('Patient/'.length) : value;
  return /^[A-Za-z0-9\-.]{1,64}$/.test(id) ? id : undefined;
}

/**
 * The key a token is remembered by: a JWT's signature (short, and unique to its header and
 * claims), an opaque token whole. The entry keeps the whole token, which a hit must equal.
 */
function cacheKey(token: string): string {
  const dot = token.lastIndexOf('.');
  return dot > 0 && dot < token.length - 16 ? token.slice(dot + 1) : token;
}

interface Remembered {
  token: string;
  identity: Identity;
}

export class TokenVerifier {
  private readonly cache = new Map<string, Remembered>();
  private keys: Promise<KeySet> | undefined;
  private clientSecret: string | undefined;

  constructor(private readonly config: AuthorizationConfig) {}

  /** The identity of a token verified before and not expired since; undefined otherwise. */
  cached(token: string, now = Date.now()): Identity | undefined {
    const key = cacheKey(token);
    const hit = this.cache.get(key);
    if (hit === undefined || hit.token !== token) return undefined;
    if (hit.identity.expiresAt > now) return hit.identity;
    this.cache.delete(key);
    return undefined;
  }

  /** Verifies a token; throws InvalidToken or IssuerUnavailable. */
  async verify(token: string): Promise<Identity> {
    const known = this.cached(token);
    if (known) return known;
    const identity = JWT_SHAPE.test(token) ? await this.verifyJwt(token) : await this.introspect(token);
    this.remember(token, identity);
    return identity;
  }

  private remember(token: string, identity: Identity): void {
    if (this.cache.size >= CACHE_ENTRIES) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
    this.cache.set(cacheKey(token), { token, identity });
  }

  private keySet(): Promise<KeySet> {
    this.keys ??= this.jwksUri().then((uri) => createRemoteJWKSet(new URL(uri), { cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS, timeoutDuration: ISSUER_TIMEOUT_MS }));
    // A failed discovery is tried again with the next token, not remembered.
    this.keys.catch(() => (this.keys = undefined));
    return this.keys;
  }

  private async jwksUri(): Promise<string> {
    if (this.config.jwksUri) return this.config.jwksUri;
    const uri = (await discovery(this.config.issuer)).jwks_uri;
    if (typeof uri !== 'string') throw new IssuerUnavailable("the issuer's discovery document names no jwks_uri");
    return uri;
  }

  private async verifyJwt(token: string): Promise<Identity> {
    const keys = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: this.config.algorithms,
        clockTolerance: this.config.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      throw this.jwtFailure(e);
    }
    return this.identityOf(payload as Record<string, unknown>, 'jwt', (payload.exp as number) * 1000);
  }

  private jwtFailure(e: unknown): Error {
    if (e instanceof joseErrors.JWKSTimeout) return new IssuerUnavailable("the issuer's JWKS did not answer in time");
    if (e instanceof joseErrors.JOSEError) {
      switch (e.code) {
        case 'ERR_JWT_EXPIRED':
          return new InvalidToken('the token has expired');
        case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
          return new InvalidToken(`the token's ${(e as joseErrors.JWTClaimValidationFailed).claim} claim is not accepted (${e.message})`);
        case 'ERR_JOSE_ALG_NOT_ALLOWED':
          return new InvalidToken(`the token's signing algorithm is not accepted (accepted: ${this.config.algorithms.join(', ')})`);
        case 'ERR_JWKS_NO_MATCHING_KEY':
          return new InvalidToken("no key of the issuer's JWKS matches the token's key id and algorithm");
        case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
          return new InvalidToken("the token's signature does not verify with the issuer's key");
        case 'ERR_JWKS_INVALID':
        case 'ERR_JOSE_GENERIC':
          return new IssuerUnavailable(`the issuer's JWKS could not be used (${e.message})`);
        default:
          return new InvalidToken(e.message);
      }
    }
    if (e instanceof IssuerUnavailable || e instanceof InvalidToken) return e;
    // A JWKS fetch that failed below jose (connection refused, DNS).
    return new IssuerUnavailable(`the issuer's JWKS could not be fetched (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }

  private async introspect(token: string): Promise<Identity> {
    const intro = this.config.introspection;
    if (!intro) throw new InvalidToken('the token is not a JWT, and this front door has no introspection endpoint for opaque tokens');
    this.clientSecret ??= readFileSync(intro.clientSecretFile, 'utf8').split('\n', 1)[0].trim();
    const basic = Buffer.from(`${encodeURIComponent(intro.clientId)}:${encodeURIComponent(this.clientSecret)}`).toString('base64');
    const answer = await getJson(intro.endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    });
    if (answer.active !== true) throw new InvalidToken('the issuer says the token is not active');
    const now = Date.now();
    const exp = typeof answer.exp === 'number' ? answer.exp * 1000 : undefined;
    if (exp === undefined) throw new InvalidToken('the issuer gives the token no expiry');
    if (exp <= now - this.config.clockSkewSeconds * 1000) throw new InvalidToken('the token has expired');
    if (typeof answer.iss === 'string' && answer.iss !== this.config.issuer) throw new InvalidToken("the token's iss claim is not the configured issuer");
    const aud = answer.aud;
    if (aud !== undefined && !(aud === this.config.audience || (Array.isArray(aud) && aud.includes(this.config.audience)))) {
      throw new InvalidToken("the token's aud claim does not name this FHIR server");
    }
    // Reused no longer than the token lives, nor than the cache time (a revoked token is refused within it).
    return this.identityOf(answer, 'introspection', Math.min(exp, now + intro.cacheSeconds * 1000));
  }

  private identityOf(claims: Record<string, unknown>, verifiedBy: Identity['verifiedBy'], expiresAt: number): Identity {
    const scopeText = typeof claims.scope === 'string' ? claims.scope : Array.isArray(claims.scp) ? (claims.scp as unknown[]).join(' ') : '';
    const scopes = scopeText.split(' ').filter(Boolean);
    const clientId = stringClaim(claims, 'client_id') ?? stringClaim(claims, 'azp');
    const subject = stringClaim(claims, 'sub');
    const fhirUser = stringClaim(claims, this.config.fhirUserClaim);
    const patient = patientId(stringClaim(claims, this.config.patientClaim));
    return {
      issuer: stringClaim(claims, 'iss') ?? this.config.issuer,
      ...(clientId !== undefined ? { clientId } : {}),
      ...(subject !== undefined ? { subject } : {}),
      ...(fhirUser !== undefined ? { fhirUser } : {}),
      ...(patient !== undefined ? { patient } : {}),
      scopes,
      grants: parseScopes(scopes),
      expiresAt,
      verifiedBy,
    };
  }
}
