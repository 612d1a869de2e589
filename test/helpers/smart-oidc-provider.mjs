// A real OpenID Connect provider for the authorization tests: npm's oidc-provider, which is an
// ES module (and so is its jose), so it runs as a process of its own that Jest's CommonJS drives
// over HTTP (test/helpers/smart-oidc.ts). Everything listens on 127.0.0.1 only.
//
// Configuration: the JSON in FG_OIDC_CONFIG (test/helpers/smart-oidc.ts resolves the defaults):
//   { audience, opaqueAudience?, alg: 'RS256' | 'ES256' | 'EdDSA', patientClaim, fhirUserClaim,
//     accessTokenTTL, extraScopes: [], introspector: { clientId, clientSecret },
//     clients: [{ clientId, clientSecret?, auth, grantTypes, redirectUris, accessTokenFormat, jwks? }],
//     accounts: [{ id, patient?, fhirUser? }] }
// Once both listeners are up it prints one JSON line on stdout: { issuer, admin }.
//
// What it serves, as a SMART on FHIR authorization server would:
// - JWT access tokens for `audience` (resource indicators with that default resource), signed by
//   the current key; opaque ones for `opaqueAudience` and for clients whose accessTokenFormat is
//   'opaque', to be introspected by `introspector` (the front door's own credentials);
// - client credentials (client_secret_basic or private_key_jwt) and the code flow with PKCE,
//   whose login and consent the provider completes itself (below), so a test runs the flow over
//   plain HTTP without a browser;
// - the launch patient and fhirUser: per flow (the authorization request's `launch_patient` and
//   `launch_fhir_user`) or per account; `patient` next to access_token in the token response
//   (SMART App Launch), and claims named by patientClaim and fhirUserClaim in the access token.
//
// The admin listener (a port of its own, so no FHIR-side request can reach it):
// - POST /rotate { keepOld, alg? }: a new signing key (new kid) signs from now on; the JWKS keeps
//   the old keys or drops them. Answers { kid, kids } (kids as the JWKS lists them).
// - POST /forge { kind, claims? }: a token an attacker could make (FORGERIES below), with the
//   claims of a real one. Answers { token }.

import { createPublicKey, randomBytes } from 'node:crypto';
import http from 'node:http';
import { URL } from 'node:url';
import Provider, { errors } from 'oidc-provider';
import { SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';

const config = JSON.parse(process.env.FG_OIDC_CONFIG ?? '');

// The scopes the provider knows that are not a FHIR resource's: they are granted as OpenID
// scopes (the ID token, offline_access's refresh token) and also listed in the access token's
// scope, as SMART's token response lists them.
const OIDC_SCOPES = ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'online_access'];
// SMART clinical scopes, v1 (read, write, *) and v2 (c, r, u, d, s in that order), with the v2
// granular query (patient/Observation.rs?category=...). Any scope of this shape is grantable, so
// a test asks for what it needs without declaring it; anything else must be in extraScopes.
const CLINICAL = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]*)\.(\*|read|write|c?r?u?d?s?)(\?\S+)?$/;

function grantable(scope) {
  const clinical = CLINICAL.exec(scope);
  if (clinical) return clinical[3] !== '';
  return OIDC_SCOPES.includes(scope) || config.extraScopes.includes(scope);
}

/** Every grantable scope asked for so far: what the resource servers offer (see resourceServer). */
const offered = new Set(OIDC_SCOPES);

/** The launch context each code flow chose, by grant id (a Grant holds no custom fields). */
const launches = new Map();

/**
 * oidc-provider's storage, shared by every provider this process builds, so that a rotation (a
 * new provider over new keys) keeps the sessions, grants and tokens issued before it. The built-in
 * memory adapter keeps one store per provider. Nothing expires here: the models check their own
 * exp, and the process lives as long as one test file.
 */
const stored = new Map();
const grantMembers = new Map();
class SharedStorage {
  constructor(model) {
    this.model = model;
  }
  key(id) {
    return `${this.model}:${id}`;
  }
  async upsert(id, payload) {
    stored.set(this.key(id), payload);
    if (this.model === 'Session') stored.set(`sessionUid:${payload.uid}`, id);
    if (payload.grantId) grantMembers.set(payload.grantId, (grantMembers.get(payload.grantId) ?? new Set()).add(this.key(id)));
  }
  async find(id) {
    return stored.get(this.key(id));
  }
  async findByUid(uid) {
    const id = stored.get(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }
  async consume(id) {
    const payload = stored.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id) {
    stored.delete(this.key(id));
  }
  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) stored.delete(key);
    grantMembers.delete(grantId);
  }
}

/** The signing keys as private JWKs, the current signer first. */
let keys = [];
let keyCount = 0;

async function newKey(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { ...(await exportJWK(privateKey)), kid: `key-${++keyCount}`, alg, use: 'sig' };
}

function accountOf(id) {
  return config.accounts.find((a) => a.id === id);
}

/** The launch patient and fhirUser of a grant: the flow's choice, else its account's. */
function launchOf(grantId, accountId) {
  const account = accountOf(accountId) ?? {};
  const chosen = launches.get(grantId) ?? {};
  return { patient: chosen.patient ?? account.patient, fhirUser: chosen.fhirUser ?? account.fhirUser };
}

function resourceServer(resource, client) {
  const known = resource === config.audience || (config.opaqueAudience !== undefined && resource === config.opaqueAudience);
  if (!known) throw new errors.InvalidTarget(`unknown resource indicator ${resource}`);
  const opaque = resource === config.opaqueAudience || config.clients.find((c) => c.clientId === client?.clientId)?.accessTokenFormat === 'opaque';
  const signer = keys[0];
  return {
    scope: [...offered].join(' '),
    audience: resource,
    accessTokenTTL: config.accessTokenTTL,
    accessTokenFormat: opaque ? 'opaque' : 'jwt',
    // The kid names the signer: with several keys of one algorithm the keystore's own choice
    // would not follow a rotation.
    ...(opaque ? {} : { jwt: { sign: { alg: signer.alg, kid: signer.kid } } }),
  };
}

function clientMetadata(c) {
  const alg = keys[0].alg;
  return {
    client_id: c.clientId,
    ...(c.clientSecret !== undefined ? { client_secret: c.clientSecret } : {}),
    token_endpoint_auth_method: c.auth,
    grant_types: c.grantTypes,
    redirect_uris: c.redirectUris,
    response_types: c.grantTypes.includes('authorization_code') ? ['code'] : [],
    id_token_signed_response_alg: alg,
    ...(c.jwks ? { jwks: c.jwks } : {}),
  };
}

/** The provider over the current keys; a rotation builds another over the same storage. */
function build() {
  const introspector = config.introspector;
  const clients = [...config.clients, { clientId: introspector.clientId, clientSecret: introspector.clientSecret, auth: 'client_secret_basic', grantTypes: [], redirectUris: [] }];
  const p = new Provider(issuer, {
    adapter: SharedStorage,
    clients: clients.map(clientMetadata),
    jwks: { keys },
    cookies: { keys: [cookieKey] },
    clientDefaults: { id_token_signed_response_alg: keys[0].alg },
    // SMART Backend Services signs client assertions with RS384 or ES384.
    enabledJWA: { clientAuthSigningAlgValues: ['RS256', 'RS384', 'ES256', 'ES384', 'EdDSA'] },
    pkce: { required: () => true },
    scopes: OIDC_SCOPES,
    claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
    extraParams: ['launch_patient', 'launch_fhir_user'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientId === introspector.clientId || client.clientId === token.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => client.clientId === introspector.clientId || client.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          for (const s of String(ctx.oidc.params?.scope ?? '').split(' ')) if (grantable(s)) offered.add(s);
          return resourceServer(resource, client);
        },
      },
    },
    findAccount: (ctx, id) => {
      if (!accountOf(id)) return undefined;
      return {
        accountId: id,
        claims: () => {
          const { fhirUser } = launchOf(ctx.oidc?.entities?.Grant?.jti, id);
          return { sub: id, ...(fhirUser !== undefined ? { fhirUser } : {}) };
        },
      };
    },
    extraTokenClaims: (_ctx, token) => {
      if (!token.accountId) return undefined;
      const { patient, fhirUser } = launchOf(token.grantId, token.accountId);
      return {
        ...(patient !== undefined ? { [config.patientClaim]: patient } : {}),
        ...(fhirUser !== undefined ? { [config.fhirUserClaim]: fhirUser } : {}),
      };
    },
    formats: {
      customizers: {
        // oidc-provider sets no nbf; a SMART resource server may check one.
        jwt: (_ctx, _token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
        },
      },
    },
  });
  // SMART App Launch: the launch patient next to access_token in the token response.
  p.use(async (ctx, next) => {
    await next();
    const grant = ctx.oidc?.entities?.Grant;
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.access_token || !grant) return;
    const { patient } = launchOf(grant.jti, grant.accountId);
    if (patient !== undefined) ctx.body.patient = patient;
  });
  return p;
}

/**
 * The login and the consent, at once and without a page: the account named by login_hint (else
 * the first one) logs in, and every grantable scope asked for is granted, so that the browser
 * would be sent straight back to the authorization endpoint.
 */
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const params = details.params;
  const accountId = String(params.login_hint ?? config.accounts[0]?.id);
  if (!accountOf(accountId)) throw new Error(`no account ${accountId}`);
  const requested = String(params.scope ?? '')
    .split(' ')
    .filter(grantable);
  const grant = new provider.Grant({ accountId, clientId: String(params.client_id) });
  grant.addOIDCScope(requested.filter((s) => OIDC_SCOPES.includes(s)).join(' '));
  grant.addResourceScope(String(params.resource ?? config.audience), requested.join(' '));
  const grantId = await grant.save();
  launches.set(grantId, {
    ...(params.launch_patient !== undefined ? { patient: String(params.launch_patient) } : {}),
    ...(params.launch_fhir_user !== undefined ? { fhirUser: String(params.launch_fhir_user) } : {}),
  });
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const b64url = (data) => Buffer.from(data).toString('base64url');

// What each forgery does to a real token. The good ones are signed by the provider's current
// key: only the claim named is wrong.
const FORGERIES = {
  // The signing key and every claim right: the control that shows the others fail for their flaw.
  control: async (claims) => signWith(keys[0], keys[0].kid, claims),
  // No signature at all (an empty third part).
  'alg-none': async (claims) => `${b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: keys[0].kid }))}.${b64url(JSON.stringify(claims))}.`,
  // Algorithm confusion: HMAC keyed with the public key, for a verifier that hands whatever key
  // the kid names to whatever alg the header says. As PEM (SPKI, as node:crypto writes it, so
  // with its final newline) ...
  'hs256-public-pem': async (claims) => hmac(createPublicKey({ key: publicJwk(keys[0]), format: 'jwk' }).export({ type: 'spki', format: 'pem' }), claims),
  // ... and as the JWK's JSON text exactly as jwks_uri serves it.
  'hs256-public-jwk': async (claims) => hmac(JSON.stringify(await servedJwk(keys[0].kid)), claims),
  // Signed by a key the issuer never published, under a kid it does not have ...
  'unknown-kid': async (claims) => signWith(await newForeignKey(), `forged-${randomBytes(6).toString('hex')}`, claims),
  // ... and under the kid of the issuer's current key.
  'foreign-key-real-kid': async (claims) => signWith(await newForeignKey(), keys[0].kid, claims),
  expired: async (claims) => {
    const now = Math.floor(Date.now() / 1000);
    return signWith(keys[0], keys[0].kid, { ...claims, iat: now - 3600, nbf: now - 3600, exp: now - 1800 });
  },
  // Valid for its usual life, but from an hour on.
  'not-yet-valid': async (claims) => {
    const nbf = Math.floor(Date.now() / 1000) + 3600;
    return signWith(keys[0], keys[0].kid, { ...claims, nbf, exp: nbf + config.accessTokenTTL });
  },
  'wrong-audience': async (claims) => signWith(keys[0], keys[0].kid, { ...claims, aud: 'https://fhir.attacker.example/fhir' }),
  'wrong-issuer': async (claims) => signWith(keys[0], keys[0].kid, { ...claims, iss: 'https://idp.attacker.example' }),
};

function publicJwk(jwk) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

async function servedJwk(kid) {
  const res = await fetch(`${issuer}/jwks`);
  const jwks = await res.json();
  return jwks.keys.find((k) => k.kid === kid);
}

async function newForeignKey() {
  const { privateKey } = await generateKeyPair(keys[0].alg, { extractable: true, ...(keys[0].alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { ...(await exportJWK(privateKey)), alg: keys[0].alg };
}

async function signWith(jwk, kid, claims) {
  return new SignJWT(claims).setProtectedHeader({ alg: jwk.alg, typ: 'at+jwt', kid }).sign(await importJWK(jwk, jwk.alg));
}

async function hmac(secret, claims) {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: keys[0].kid }).sign(new TextEncoder().encode(secret));
}

/**
 * A real code-flow token's claims, patient-scoped: the first account (its launch patient, else
 * 'example') and the first client with the code flow; `claims` over them, a null value dropping one.
 */
function realClaims(claims = {}) {
  const now = Math.floor(Date.now() / 1000);
  const account = config.accounts[0] ?? { id: 'nobody' };
  const app = config.clients.find((c) => c.grantTypes.includes('authorization_code')) ?? config.clients[0];
  const base = {
    jti: randomBytes(16).toString('base64url'),
    sub: account.id,
    iat: now,
    nbf: now,
    exp: now + config.accessTokenTTL,
    scope: 'openid fhirUser launch/patient patient/*.rs',
    client_id: app?.clientId,
    iss: issuer,
    aud: config.audience,
    [config.patientClaim]: account.patient ?? 'example',
    ...(account.fhirUser !== undefined ? { [config.fhirUserClaim]: account.fhirUser } : {}),
    ...claims,
  };
  return Object.fromEntries(Object.entries(base).filter(([, v]) => v !== null && v !== undefined));
}

async function rotate({ keepOld = true, alg = keys[0].alg } = {}) {
  const key = await newKey(alg);
  install(keepOld ? [key, ...keys] : [key]);
  return { kid: key.kid, kids: keys.map((k) => k.kid) };
}

async function admin(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
  if (req.method === 'POST' && req.url === '/rotate') return rotate(body);
  if (req.method === 'POST' && req.url === '/forge') {
    const forge = Object.hasOwn(FORGERIES, body.kind) ? FORGERIES[body.kind] : undefined;
    if (!forge) throw Object.assign(new Error(`unknown forgery ${body.kind}; known: ${Object.keys(FORGERIES).join(', ')}`), { status: 400 });
    return { token: await forge(realClaims(body.claims)) };
  }
  throw Object.assign(new Error(`no ${req.method} ${req.url}`), { status: 404 });
}

function fail(res, err) {
  res.statusCode = err?.status ?? 500;
  res.setHeader('content-type', 'text/plain');
  res.end(String(err?.stack ?? err));
}

// Fixed for the process: a flow that straddles a rotation keeps its cookies.
const cookieKey = randomBytes(32).toString('base64url');
let provider;
let callback;

/** Serves from now on a provider over `signingKeys` (the first signs). */
function install(signingKeys) {
  keys = signingKeys;
  provider = build();
  callback = provider.callback();
}

const server = http.createServer((req, res) => {
  if (new URL(req.url ?? '/', issuer).pathname.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => fail(res, err));
    return;
  }
  callback(req, res);
});
// The issuer names the port, so the listener comes first; the ready line, and so the first
// request, comes only once the provider is built.
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
install([await newKey(config.alg)]);

const adminServer = http.createServer((req, res) => {
  admin(req)
    .then((answer) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(answer));
    })
    .catch((err) => fail(res, err));
});
await new Promise((resolve) => adminServer.listen(0, '127.0.0.1', resolve));

process.stdout.write(JSON.stringify({ issuer, admin: `http://127.0.0.1:${adminServer.address().port}` }) + '\n');
process.on('SIGTERM', () => {
  adminServer.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
