// A real OpenID Connect provider for the authorization tests (test/helpers/smart-oidc-provider.mjs:
// npm's oidc-provider, an ES module, so a child process) and what a SMART client does with it:
// client credentials (client_secret_basic, private_key_jwt), the code flow with PKCE over plain
// HTTP with a launch patient, opaque tokens, introspection and revocation; plus a key rotation
// and forged tokens for the negative tests.
//
//   const oidc = await startOidcProvider({ audience: 'https://fhir.test/fhir' });
//   const { access_token } = await oidc.clientCredentialsToken('backend', 'system/*.rs');
//   const launched = await oidc.authorizationCodeToken({ scope: 'launch/patient patient/*.rs', patient: 'p1' });
//   await oidc.rotateKey({ keepOld: false });
//   const none = await oidc.forge('alg-none');
//   await oidc.stop();
//   afterAll(() => stopAllOidcProviders());      // safety net for failed tests

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { terminate, type ChildExit } from './worker-process';

const SCRIPT = join(__dirname, 'smart-oidc-provider.mjs');

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';

/** What POST /forge makes (see FORGERIES in smart-oidc-provider.mjs). */
export type ForgedKind = 'control' | 'alg-none' | 'hs256-public-pem' | 'hs256-public-jwk' | 'unknown-kid' | 'foreign-key-real-kid' | 'expired' | 'not-yet-valid' | 'wrong-audience' | 'wrong-issuer';

export const FORGED_KINDS: readonly ForgedKind[] = [
  'control',
  'alg-none',
  'hs256-public-pem',
  'hs256-public-jwk',
  'unknown-kid',
  'foreign-key-real-kid',
  'expired',
  'not-yet-valid',
  'wrong-audience',
  'wrong-issuer',
];

export type GrantType = 'client_credentials' | 'authorization_code' | 'refresh_token';

export interface OidcClientOptions {
  clientId: string;
  /** Confidential with client_secret_basic when set (and auth is not private_key_jwt). */
  clientSecret?: string;
  /** Default: client_secret_basic with a secret, else none (a public app). private_key_jwt: the harness makes the client's key pair. */
  auth?: 'client_secret_basic' | 'private_key_jwt' | 'none';
  /** Default: client_credentials for a confidential client, authorization_code and refresh_token for a public one. */
  grantTypes?: GrantType[];
  /** Default for the code flow: http://127.0.0.1/callback (never listened on: the harness reads the redirect). */
  redirectUri?: string;
  /** What clientCredentialsToken and authorizationCodeToken ask for when the call names no scope. */
  scope?: string;
  /** 'opaque': its access tokens are references, for introspection. Default 'jwt'. */
  accessTokenFormat?: 'jwt' | 'opaque';
}

export interface OidcAccount {
  id: string;
  /** The launch patient of a flow that chooses none. */
  patient?: string;
  /** e.g. Practitioner/123. */
  fhirUser?: string;
}

export interface OidcProviderOptions {
  /** The FHIR base URL: the resource indicator every JWT access token is for (its aud). */
  audience: string;
  /** A second resource indicator whose access tokens are opaque, whatever the client. */
  opaqueAudience?: string;
  /** Default RS256. */
  alg?: SigningAlg;
  /** The access token's launch patient claim. Default 'patient'. */
  patientClaim?: string;
  /** The access token's user claim. Default 'fhirUser'. */
  fhirUserClaim?: string;
  /** Seconds. Default 600. */
  accessTokenTTL?: number;
  /** Scopes to grant beyond SMART's clinical ones and openid, fhirUser, launch, launch/patient, offline_access, online_access. */
  extraScopes?: string[];
  /** Default DEFAULT_CLIENTS. */
  clients?: OidcClientOptions[];
  /** Default DEFAULT_ACCOUNTS; the first one logs in when a flow names none. */
  accounts?: OidcAccount[];
  /** The client allowed to introspect and revoke every token: the front door's own credentials. */
  introspector?: { clientId: string; clientSecret: string };
  readyTimeoutMs?: number;
}

export const DEFAULT_CLIENTS: readonly OidcClientOptions[] = [
  { clientId: 'backend', clientSecret: 'backend-secret', scope: 'system/*.rs' },
  { clientId: 'backend-jwt', auth: 'private_key_jwt', grantTypes: ['client_credentials'], scope: 'system/*.rs' },
  { clientId: 'opaque-backend', clientSecret: 'opaque-backend-secret', scope: 'system/*.rs', accessTokenFormat: 'opaque' },
  { clientId: 'app', scope: 'openid fhirUser launch/patient patient/*.rs' },
];

export const DEFAULT_ACCOUNTS: readonly OidcAccount[] = [{ id: 'clinician', fhirUser: 'Practitioner/clinician' }];

export const DEFAULT_INTROSPECTOR = { clientId: 'fhirguard', clientSecret: 'fhirguard-secret' } as const;

/** A token endpoint's answer; `patient` is SMART's launch patient. */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  patient?: string;
  id_token?: string;
  refresh_token?: string;
  [field: string]: unknown;
}

export interface CodeFlowOptions {
  /** Default: the first client with the authorization_code grant. */
  clientId?: string;
  /** Default: the client's scope. */
  scope?: string;
  /** The account that logs in (login_hint). Default: the first account. */
  account?: string;
  /** This flow's launch patient (else the account's). */
  patient?: string;
  /** This flow's fhirUser (else the account's). */
  fhirUser?: string;
  /** Default: the audience. */
  resource?: string;
}

interface ResolvedClient {
  clientId: string;
  clientSecret?: string;
  auth: 'client_secret_basic' | 'private_key_jwt' | 'none';
  grantTypes: GrantType[];
  redirectUris: string[];
  scope?: string;
  accessTokenFormat: 'jwt' | 'opaque';
  /** private_key_jwt: the public half goes to the provider, the private one signs assertions. */
  jwks?: { keys: object[] };
  privateKey?: KeyObject;
  kid?: string;
}

export interface OidcProvider {
  issuer: string;
  audience: string;
  alg: SigningAlg;
  patientClaim: string;
  fhirUserClaim: string;
  /** http://127.0.0.1:PORT of the admin listener (rotation, forgery). */
  adminUrl: string;
  discoveryUrl: string;
  jwksUri: string;
  tokenEndpoint: string;
  authorizationEndpoint: string;
  revocationEndpoint: string;
  /** What the front door's configuration needs to introspect opaque tokens. */
  introspection: { endpoint: string; clientId: string; clientSecret: string };
  pid: number;
  child: ChildProcess;
  /** Whatever the provider wrote to stderr. */
  stderr(): string;
  exited: Promise<ChildExit>;
  /** Client credentials for `clientId` (default: the first confidential client), by its own authentication method. */
  clientCredentialsToken(clientId?: string, scope?: string, resource?: string): Promise<TokenResponse>;
  /** The authorization code flow with PKCE (S256), redirects followed by hand, login and consent done by the provider. */
  authorizationCodeToken(o?: CodeFlowOptions): Promise<TokenResponse>;
  /** Client credentials that give an opaque token: `clientId` defaults to the first opaque client, `resource` to opaqueAudience for others. */
  opaqueToken(clientId?: string, scope?: string): Promise<TokenResponse>;
  /** RFC 7662, as the introspector. */
  introspect(token: string): Promise<Record<string, unknown>>;
  /** RFC 7009, as the introspector unless another client is named. */
  revoke(token: string, clientId?: string): Promise<void>;
  /** A new signing key (new kid) signs from now on; the JWKS keeps the old keys or drops them. */
  rotateKey(o: { keepOld: boolean; alg?: SigningAlg }): Promise<{ kid: string; kids: string[] }>;
  /** A forged token with the claims of a real code-flow one, `claims` over them (null drops one). */
  forge(kind: ForgedKind, claims?: Record<string, unknown>): Promise<string>;
  /** The JWKS as served. */
  jwks(): Promise<{ keys: Array<Record<string, string>> }>;
  /** SIGTERM and wait for the exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<ChildExit>;
}

const running = new Set<OidcProvider>();

function resolveClient(c: OidcClientOptions): ResolvedClient {
  const auth = c.auth ?? (c.clientSecret !== undefined ? 'client_secret_basic' : 'none');
  const grantTypes = c.grantTypes ?? (auth === 'none' ? ['authorization_code', 'refresh_token'] : ['client_credentials']);
  const resolved: ResolvedClient = {
    clientId: c.clientId,
    ...(c.clientSecret !== undefined ? { clientSecret: c.clientSecret } : {}),
    auth,
    grantTypes,
    redirectUris: grantTypes.includes('authorization_code') ? [c.redirectUri ?? 'http://127.0.0.1/callback'] : [],
    ...(c.scope !== undefined ? { scope: c.scope } : {}),
    accessTokenFormat: c.accessTokenFormat ?? 'jwt',
  };
  if (auth === 'private_key_jwt') {
    // RS384: what SMART Backend Services asks clients to support.
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = `${c.clientId}-key`;
    resolved.jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS384', use: 'sig' }] };
    resolved.privateKey = privateKey;
    resolved.kid = kid;
  }
  return resolved;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** The payload of a provider's answer, or an error naming what was asked and what came back. */
async function json<T>(what: string, res: Response): Promise<T> {
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${what} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<OidcProvider> {
  const clients = (opts.clients ?? DEFAULT_CLIENTS).map(resolveClient);
  const introspector = opts.introspector ?? DEFAULT_INTROSPECTOR;
  const config = {
    audience: opts.audience,
    ...(opts.opaqueAudience !== undefined ? { opaqueAudience: opts.opaqueAudience } : {}),
    alg: opts.alg ?? 'RS256',
    patientClaim: opts.patientClaim ?? 'patient',
    fhirUserClaim: opts.fhirUserClaim ?? 'fhirUser',
    accessTokenTTL: opts.accessTokenTTL ?? 600,
    extraScopes: opts.extraScopes ?? [],
    introspector,
    clients: clients.map(({ privateKey: _p, kid: _k, scope: _s, ...c }) => c),
    accounts: opts.accounts ?? DEFAULT_ACCOUNTS,
  };
  const child = spawn(process.execPath, [SCRIPT], { env: { ...process.env, FG_OIDC_CONFIG: JSON.stringify(config) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  const exited = new Promise<ChildExit>((res) => child.once('exit', (code, signal) => res({ code, signal })));

  const ready = await new Promise<{ issuer: string; admin: string }>((resolve, reject) => {
    const timeoutMs = opts.readyTimeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the OpenID provider did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    // oidc-provider writes its notices on stdout too: the ready line is the first JSON one.
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l, i, all) => i < all.length - 1 && l.startsWith('{'));
      if (line === undefined) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as { issuer: string; admin: string });
      } catch {
        reject(new Error(`the OpenID provider's ready line is not JSON: ${line}`));
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the OpenID provider exited (${code ?? signal}) before it was ready:\n${stderr}`));
    });
  });

  // The endpoints as the provider publishes them, not as this file guesses them.
  const discoveryUrl = `${ready.issuer}/.well-known/openid-configuration`;
  let discovery: Record<string, string>;
  try {
    discovery = await json<Record<string, string>>('discovery', await fetch(discoveryUrl));
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }

  const clientOf = (clientId: string): ResolvedClient => {
    const c = clients.find((x) => x.clientId === clientId);
    if (!c) throw new Error(`no client ${clientId} (the provider has ${clients.map((x) => x.clientId).join(', ')})`);
    return c;
  };
  const firstWith = (what: string, ok: (c: ResolvedClient) => boolean): ResolvedClient => {
    const c = clients.find(ok);
    if (!c) throw new Error(`no client ${what}`);
    return c;
  };

  /** The client's authentication as form fields and headers. */
  const authenticate = (c: ResolvedClient, audience: string): { form: Record<string, string>; headers: Record<string, string> } => {
    if (c.auth === 'client_secret_basic') {
      const basic = Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret ?? '')}`).toString('base64');
      return { form: {}, headers: { authorization: `Basic ${basic}` } };
    }
    if (c.auth === 'private_key_jwt') {
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64url(JSON.stringify({ alg: 'RS384', typ: 'JWT', kid: c.kid }))}.${b64url(JSON.stringify({ iss: c.clientId, sub: c.clientId, aud: audience, jti: randomUUID(), iat: now, exp: now + 60 }))}`;
      const assertion = `${input}.${b64url(sign('sha384', Buffer.from(input), c.privateKey!))}`;
      return { form: { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }, headers: {} };
    }
    return { form: { client_id: c.clientId }, headers: {} };
  };

  const post = async (endpoint: string, c: ResolvedClient, form: Record<string, string>): Promise<Response> => {
    const auth = authenticate(c, endpoint);
    return fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
      body: new URLSearchParams({ ...form, ...auth.form }).toString(),
    });
  };

  const clientCredentialsToken = async (clientId?: string, scope?: string, resource?: string): Promise<TokenResponse> => {
    const c = clientId !== undefined ? clientOf(clientId) : firstWith('with client credentials', (x) => x.grantTypes.includes('client_credentials'));
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    const s = scope ?? c.scope;
    if (s !== undefined) form.scope = s;
    if (resource !== undefined) form.resource = resource;
    return json<TokenResponse>(`client credentials for ${c.clientId}`, await post(discovery.token_endpoint, c, form));
  };

  const authorizationCodeToken = async (o: CodeFlowOptions = {}): Promise<TokenResponse> => {
    const c = o.clientId !== undefined ? clientOf(o.clientId) : firstWith('with the code flow', (x) => x.grantTypes.includes('authorization_code'));
    const redirectUri = c.redirectUris[0];
    if (!redirectUri) throw new Error(`client ${c.clientId} has no redirect URI: it cannot run the code flow`);
    const verifier = b64url(randomBytes(32));
    const state = b64url(randomBytes(16));
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: c.clientId,
      redirect_uri: redirectUri,
      scope: o.scope ?? c.scope ?? 'openid',
      state,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      // oidc-provider grants offline_access (a refresh token) only where consent is asked for.
      prompt: 'consent',
      resource: o.resource ?? opts.audience,
      ...(o.account !== undefined ? { login_hint: o.account } : {}),
      ...(o.patient !== undefined ? { launch_patient: o.patient } : {}),
      ...(o.fhirUser !== undefined ? { launch_fhir_user: o.fhirUser } : {}),
    });
    // A browser's part: follow each redirect, keeping the cookies, until the provider sends it
    // back to the app's redirect URI.
    const cookies = new Map<string, string>();
    let url = `${discovery.authorization_endpoint}?${query.toString()}`;
    for (let hop = 0; !url.startsWith(redirectUri); hop++) {
      if (hop === 10) throw new Error(`the code flow did not come back to ${redirectUri} in 10 redirects (last: ${url})`);
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      const body = await res.text();
      for (const set of res.headers.getSetCookie()) {
        const [pair] = set.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !location) throw new Error(`${url} answered ${res.status}: ${body}`);
      url = new URL(location, url).href;
    }
    const back = new URL(url).searchParams;
    if (back.get('error')) throw new Error(`the authorization failed: ${back.get('error')}: ${back.get('error_description')}`);
    if (back.get('state') !== state) throw new Error(`the state came back as ${back.get('state')}, not ${state}`);
    const code = back.get('code');
    if (!code) throw new Error(`no code in ${url}`);
    const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, resource: o.resource ?? opts.audience };
    return json<TokenResponse>(`the code exchange for ${c.clientId}`, await post(discovery.token_endpoint, c, form));
  };

  const introspectorClient: ResolvedClient = {
    clientId: introspector.clientId,
    clientSecret: introspector.clientSecret,
    auth: 'client_secret_basic',
    grantTypes: [],
    redirectUris: [],
    accessTokenFormat: 'jwt',
  };

  const admin = async <T>(path: string, body: object): Promise<T> =>
    json<T>(`admin ${path}`, await fetch(`${ready.admin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));

  const p: OidcProvider = {
    issuer: ready.issuer,
    audience: opts.audience,
    alg: config.alg,
    patientClaim: config.patientClaim,
    fhirUserClaim: config.fhirUserClaim,
    adminUrl: ready.admin,
    discoveryUrl,
    jwksUri: discovery.jwks_uri,
    tokenEndpoint: discovery.token_endpoint,
    authorizationEndpoint: discovery.authorization_endpoint,
    revocationEndpoint: discovery.revocation_endpoint,
    introspection: { endpoint: discovery.introspection_endpoint, clientId: introspector.clientId, clientSecret: introspector.clientSecret },
    pid: child.pid!,
    child,
    stderr: () => stderr,
    exited,
    clientCredentialsToken,
    authorizationCodeToken,
    async opaqueToken(clientId?: string, scope?: string) {
      const c = clientId !== undefined ? clientOf(clientId) : firstWith('with opaque tokens', (x) => x.accessTokenFormat === 'opaque' && x.grantTypes.includes('client_credentials'));
      const resource = c.accessTokenFormat === 'opaque' ? undefined : opts.opaqueAudience;
      if (c.accessTokenFormat !== 'opaque' && resource === undefined) throw new Error(`client ${c.clientId} gets JWTs and no opaqueAudience is set`);
      return clientCredentialsToken(c.clientId, scope, resource);
    },
    async introspect(token: string) {
      return json<Record<string, unknown>>('introspection', await post(discovery.introspection_endpoint, introspectorClient, { token }));
    },
    async revoke(token: string, clientId?: string) {
      const res = await post(discovery.revocation_endpoint, clientId !== undefined ? clientOf(clientId) : introspectorClient, { token });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}: ${text}`);
    },
    rotateKey: (o) => admin('/rotate', o),
    async forge(kind, claims) {
      return (await admin<{ token: string }>('/forge', { kind, ...(claims ? { claims } : {}) })).token;
    },
    async jwks() {
      return json('the JWKS', await fetch(discovery.jwks_uri));
    },
    async stop(timeoutMs = 10_000) {
      running.delete(p);
      return terminate(child, exited, timeoutMs);
    },
  };
  running.add(p);
  return p;
}

/** Kills every provider this test file started and still runs (call in afterAll). */
export async function stopAllOidcProviders(): Promise<void> {
  await Promise.all(
    [...running].map(async (p) => {
      running.delete(p);
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
}

/** A JWT's header and payload, unverified. */
export function decodeJwt(token: string): { header: Record<string, any>; payload: Record<string, any>; signature: string; signingInput: string } {
  const [header, payload, signature] = token.split('.');
  if (signature === undefined) throw new Error(`not a JWS compact serialization: ${token}`);
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, any>,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, any>,
    signature,
    signingInput: `${header}.${payload}`,
  };
}
