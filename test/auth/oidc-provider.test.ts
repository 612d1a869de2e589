// The OpenID Connect provider the authorization tests run against (test/helpers/smart-oidc.ts)
// does what they rely on: discovery and JWKS; client-credentials and code-flow JWTs whose
// signatures verify against the JWKS, with the issuer, audience, scopes, client and launch
// context asked for; the three signing algorithms and a configurable patient claim; key
// rotation; forged tokens that each have exactly their flaw; opaque tokens that introspect and
// stop being active once revoked. Signatures are checked with node:crypto alone, as a resource
// server would, since Jest cannot load the ESM jose.

import { createHmac, createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { DEFAULT_CLIENTS, FORGED_KINDS, decodeJwt, startOidcProvider, stopAllOidcProviders, type ForgedKind, type OidcProvider, type TokenResponse } from '../helpers/smart-oidc';

const AUDIENCE = 'https://fhir.test/fhir';
const OPAQUE_AUDIENCE = 'https://fhir.test/opaque-fhir';
const ACCOUNTS = [
  { id: 'clinician', fhirUser: 'Practitioner/clinician' },
  { id: 'nurse', patient: 'p7', fhirUser: 'Practitioner/nurse' },
];
const GRANULAR = 'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory';

/** The kids of the JWKS keys under which the token's signature verifies. */
function verifyingKids(token: string, jwks: { keys: Array<Record<string, string>> }): string[] {
  const { header, signingInput, signature } = decodeJwt(token);
  const data = Buffer.from(signingInput);
  const sig = Buffer.from(signature, 'base64url');
  return jwks.keys
    .filter((jwk) => jwk.alg === header.alg)
    .filter((jwk) => {
      const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      if (jwk.alg === 'RS256') return verify('sha256', data, key, sig);
      if (jwk.alg === 'ES256') return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
      if (jwk.alg === 'EdDSA') return verify(null, data, key, sig);
      throw new Error(`no verifier for ${jwk.alg}`);
    })
    .map((jwk) => jwk.kid);
}

/** Seconds since the epoch, as a token's times are. */
const now = () => Math.floor(Date.now() / 1000);

/** Runs `issue`, expecting the token's iat inside the seconds it ran in. */
async function timed<T>(issue: () => Promise<T>): Promise<{ value: T; before: number; after: number }> {
  const before = now();
  const value = await issue();
  return { value, before, after: now() };
}

/**
 * `token` is a JWT access token of `oidc` for AUDIENCE signed by its key `kid`, with exactly
 * `claims` besides its jti and its times: an iat within [before, after], nbf at iat, 600 s of life.
 */
async function expectAccessToken(oidc: OidcProvider, token: string, claims: Record<string, unknown>, { before, after }: { before: number; after: number }, kid = 'key-1') {
  const { header, payload } = decodeJwt(token);
  expect(header).toEqual({ alg: oidc.alg, typ: 'at+jwt', kid });
  expect(verifyingKids(token, await oidc.jwks())).toEqual([kid]);
  expect(payload).toEqual({ jti: expect.any(String), iss: oidc.issuer, aud: AUDIENCE, ...claims, iat: payload.iat, nbf: payload.iat, exp: payload.iat + 600 });
  expect(payload.iat).toBeGreaterThanOrEqual(before);
  expect(payload.iat).toBeLessThanOrEqual(after);
}

function withoutTimes(payload: Record<string, unknown>): Record<string, unknown> {
  const { jti: _j, iat: _i, nbf: _n, exp: _e, ...rest } = payload;
  return rest;
}

afterAll(async () => {
  await stopAllOidcProviders();
});

describe('an RS256 provider with the default clients', () => {
  let oidc: OidcProvider;

  beforeAll(async () => {
    oidc = await startOidcProvider({
      audience: AUDIENCE,
      opaqueAudience: OPAQUE_AUDIENCE,
      accounts: ACCOUNTS,
      clients: [...DEFAULT_CLIENTS, { clientId: 'opaque-app', accessTokenFormat: 'opaque' }],
    });
  });

  test('serves discovery and a JWKS of one public RS256 key', async () => {
    expect(oidc.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const discovery = (await (await fetch(oidc.discoveryUrl)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({
      issuer: oidc.issuer,
      jwks_uri: `${oidc.issuer}/jwks`,
      token_endpoint: `${oidc.issuer}/token`,
      authorization_endpoint: `${oidc.issuer}/auth`,
      introspection_endpoint: `${oidc.issuer}/token/introspection`,
      revocation_endpoint: `${oidc.issuer}/token/revocation`,
      code_challenge_methods_supported: ['S256'],
      scopes_supported: ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'online_access'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
    expect(discovery.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials', 'refresh_token']));
    expect(discovery.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'private_key_jwt', 'none']));
    expect(oidc.jwksUri).toBe(`${oidc.issuer}/jwks`);
    expect(oidc.tokenEndpoint).toBe(`${oidc.issuer}/token`);
    expect(oidc.introspection).toEqual({ endpoint: `${oidc.issuer}/token/introspection`, clientId: 'fhirguard', clientSecret: 'fhirguard-secret' });

    const jwks = await oidc.jwks();
    expect(jwks.keys).toEqual([{ kty: 'RSA', use: 'sig', kid: 'key-1', alg: 'RS256', e: 'AQAB', n: expect.stringMatching(/^[A-Za-z0-9_-]{342}$/) }]);
  });

  test.each([
    ['client_secret_basic', 'backend'],
    ['private_key_jwt', 'backend-jwt'],
  ])('client credentials (%s) give a JWT for the audience that verifies against the JWKS', async (_auth, clientId) => {
    const { value: res, ...times } = await timed(() => oidc.clientCredentialsToken(clientId));
    expect(res).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 600, scope: 'system/*.rs' });
    await expectAccessToken(oidc, res.access_token, { sub: clientId, client_id: clientId, scope: 'system/*.rs' }, times);
  });

  test('the code flow requires PKCE with S256', async () => {
    const query = new URLSearchParams({ response_type: 'code', client_id: 'app', redirect_uri: 'http://127.0.0.1/callback', scope: 'patient/*.rs', resource: AUDIENCE, state: 's' });
    const plain = new URLSearchParams({ ...Object.fromEntries(query), code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
    for (const [params, description] of [
      [query, 'Authorization Server policy requires PKCE to be used for this request'],
      [plain, 'not supported value of code_challenge_method'],
    ] as const) {
      const res = await fetch(`${oidc.authorizationEndpoint}?${params.toString()}`, { redirect: 'manual' });
      expect(res.status).toBe(303);
      const back = new URL(res.headers.get('location')!).searchParams;
      expect([back.get('error'), back.get('error_description')]).toEqual(['invalid_request', description]);
    }
  });

  test('grants SMART v1, v2 and granular scopes as resource scopes, and nothing else', async () => {
    const asked = ['patient/Observation.rs', 'user/*.cruds', 'system/Patient.r', 'patient/*.read', 'user/Observation.write', GRANULAR];
    const res = await oidc.clientCredentialsToken('backend', [...asked, 'not-a-smart-scope', 'system/Patient.'].join(' '));
    expect(res.scope).toBe(asked.join(' '));
    expect(decodeJwt(res.access_token).payload.scope).toBe(asked.join(' '));
  });

  test('refuses a resource it does not serve', async () => {
    await expect(oidc.clientCredentialsToken('backend', 'system/*.rs', 'https://other.test/fhir')).rejects.toThrow(
      'client credentials for backend answered 400: {"error":"invalid_target","error_description":"unknown resource indicator https://other.test/fhir"}',
    );
  });

  test('the code flow with PKCE gives the launch patient in the token response and in the access token', async () => {
    const scope = `openid fhirUser launch/patient offline_access patient/Observation.rs ${GRANULAR}`;
    const { value: res, ...times } = await timed(() => oidc.authorizationCodeToken({ scope, patient: 'p1' }));
    expect(res).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 600,
      scope,
      patient: 'p1',
      id_token: expect.any(String),
      refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    await expectAccessToken(oidc, res.access_token, { sub: 'clinician', client_id: 'app', scope, patient: 'p1', fhirUser: 'Practitioner/clinician' }, times);
    // SMART's fhirUser is also the ID token's, for the app itself.
    const idToken = decodeJwt(res.id_token!);
    expect(verifyingKids(res.id_token!, await oidc.jwks())).toEqual(['key-1']);
    expect(idToken.payload).toMatchObject({ iss: oidc.issuer, aud: 'app', sub: 'clinician', fhirUser: 'Practitioner/clinician' });
  });

  test("the launch patient comes from the account when the flow names none, and a flow's fhirUser wins", async () => {
    const res = await oidc.authorizationCodeToken({ account: 'nurse', scope: 'launch/patient patient/*.rs', fhirUser: 'Practitioner/override' });
    expect(res.patient).toBe('p7');
    expect(res.id_token).toBeUndefined();
    expect(withoutTimes(decodeJwt(res.access_token).payload)).toEqual({
      iss: oidc.issuer,
      aud: AUDIENCE,
      sub: 'nurse',
      client_id: 'app',
      scope: 'launch/patient patient/*.rs',
      patient: 'p7',
      fhirUser: 'Practitioner/override',
    });

    const noPatient = await oidc.authorizationCodeToken({ scope: 'user/*.cruds' });
    expect(noPatient.patient).toBeUndefined();
    expect(withoutTimes(decodeJwt(noPatient.access_token).payload)).toEqual({
      iss: oidc.issuer,
      aud: AUDIENCE,
      sub: 'clinician',
      client_id: 'app',
      scope: 'user/*.cruds',
      fhirUser: 'Practitioner/clinician',
    });
  });

  test('an opaque token introspects as active with its scope, and as inactive once revoked', async () => {
    const { value: res, before, after } = await timed(() => oidc.opaqueToken());
    expect(res).toEqual({ access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), token_type: 'Bearer', expires_in: 600, scope: 'system/*.rs' });
    const active = await oidc.introspect(res.access_token);
    expect(active).toEqual({
      active: true,
      iss: oidc.issuer,
      aud: AUDIENCE,
      client_id: 'opaque-backend',
      scope: 'system/*.rs',
      token_type: 'Bearer',
      iat: active.iat,
      exp: (active.iat as number) + 600,
    });
    expect(active.iat).toBeGreaterThanOrEqual(before);
    expect(active.iat).toBeLessThanOrEqual(after);

    // Only the introspector (and the token's own client) may see it.
    const stranger = await fetch(oidc.introspection.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('backend:backend-secret').toString('base64')}` },
      body: new URLSearchParams({ token: res.access_token }).toString(),
    });
    expect(await stranger.json()).toEqual({ active: false });

    await oidc.revoke(res.access_token);
    expect(await oidc.introspect(res.access_token)).toEqual({ active: false });
  });

  test("the opaque resource's tokens, and a code flow's, introspect with their audience and launch context", async () => {
    const backend = await oidc.opaqueToken('backend', 'system/Patient.r');
    expect(backend.access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await oidc.introspect(backend.access_token)).toMatchObject({ active: true, aud: OPAQUE_AUDIENCE, client_id: 'backend', scope: 'system/Patient.r' });

    const app = await oidc.authorizationCodeToken({ clientId: 'opaque-app', scope: 'launch/patient patient/Observation.rs', patient: 'p3' });
    expect(app.patient).toBe('p3');
    expect(app.access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { iat: _i, exp: _e, ...introspected } = await oidc.introspect(app.access_token);
    expect(introspected).toEqual({
      active: true,
      iss: oidc.issuer,
      aud: AUDIENCE,
      sub: 'clinician',
      client_id: 'opaque-app',
      scope: 'launch/patient patient/Observation.rs',
      token_type: 'Bearer',
      patient: 'p3',
      fhirUser: 'Practitioner/clinician',
    });
  });

  describe('forged tokens', () => {
    let control: ReturnType<typeof decodeJwt>;
    let kinds: Record<ForgedKind, ReturnType<typeof decodeJwt> & { token: string }>;
    let before: number;
    let after: number;

    beforeAll(async () => {
      before = now();
      const forged = await Promise.all(FORGED_KINDS.map(async (kind) => [kind, await oidc.forge(kind)] as const));
      after = now();
      kinds = Object.fromEntries(forged.map(([kind, token]) => [kind, { ...decodeJwt(token), token }])) as typeof kinds;
      control = kinds.control;
    });

    test("the control is a real token in all but its origin: signed by the current key, with a code-flow token's claims", async () => {
      const claims = { sub: 'clinician', client_id: 'app', scope: 'openid fhirUser launch/patient patient/*.rs', patient: 'example', fhirUser: 'Practitioner/clinician' };
      await expectAccessToken(oidc, kinds.control.token, claims, { before, after });
    });

    test('alg none has no signature', () => {
      const t = kinds['alg-none'];
      expect(t.header).toEqual({ alg: 'none', typ: 'at+jwt', kid: 'key-1' });
      expect(t.signature).toBe('');
      expect(t.token.endsWith('.')).toBe(true);
      expect(withoutTimes(t.payload)).toEqual(withoutTimes(control.payload));
    });

    test('HS256 is keyed with the public key: its PEM, and its JWK as jwks_uri serves it', async () => {
      const served = (await (await fetch(oidc.jwksUri)).json()) as { keys: Array<Record<string, string>> };
      const pem = createPublicKey({ key: served.keys[0] as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
      expect(pem.startsWith('-----BEGIN PUBLIC KEY-----\n')).toBe(true);
      for (const [kind, secret] of [
        ['hs256-public-pem', pem],
        ['hs256-public-jwk', JSON.stringify(served.keys[0])],
      ] as const) {
        const t = kinds[kind];
        expect(t.header).toEqual({ alg: 'HS256', typ: 'at+jwt', kid: 'key-1' });
        expect(t.signature).toBe(createHmac('sha256', secret).update(t.signingInput).digest('base64url'));
        expect(verifyingKids(t.token, served)).toEqual([]);
        expect(withoutTimes(t.payload)).toEqual(withoutTimes(control.payload));
      }
    });

    test('a key the issuer never published signs under an unknown kid and under the real one', async () => {
      const jwks = await oidc.jwks();
      const unknown = kinds['unknown-kid'];
      expect(unknown.header).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: expect.stringMatching(/^forged-[0-9a-f]{12}$/) });
      expect(jwks.keys.map((k) => k.kid)).not.toContain(unknown.header.kid);
      // verifyingKids tries every key of the algorithm whatever its kid: the key itself is foreign.
      expect(verifyingKids(unknown.token, jwks)).toEqual([]);
      const realKid = kinds['foreign-key-real-kid'];
      expect(realKid.header).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: 'key-1' });
      expect(verifyingKids(realKid.token, jwks)).toEqual([]);
      for (const t of [unknown, realKid]) {
        expect(decodeJwt(t.token).signature).toMatch(/^[A-Za-z0-9_-]{342}$/);
        expect(withoutTimes(t.payload)).toEqual(withoutTimes(control.payload));
      }
    });

    test('expired, not yet valid, wrong audience and wrong issuer are well signed and wrong only there', async () => {
      const jwks = await oidc.jwks();
      for (const kind of ['expired', 'not-yet-valid', 'wrong-audience', 'wrong-issuer'] as const) {
        expect(kinds[kind].header).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: 'key-1' });
        expect(verifyingKids(kinds[kind].token, jwks)).toEqual(['key-1']);
      }
      const expired = kinds.expired.payload;
      expect(withoutTimes(expired)).toEqual(withoutTimes(control.payload));
      expect(expired.exp).toBeGreaterThanOrEqual(before - 1800);
      expect(expired.exp).toBeLessThanOrEqual(after - 1800);
      expect([expired.iat, expired.nbf]).toEqual([expired.exp - 1800, expired.exp - 1800]);

      const early = kinds['not-yet-valid'].payload;
      expect(withoutTimes(early)).toEqual(withoutTimes(control.payload));
      expect(early.nbf).toBeGreaterThanOrEqual(before + 3600);
      expect(early.nbf).toBeLessThanOrEqual(after + 3600);
      expect(early.exp).toBe(early.nbf + 600);

      expect(withoutTimes(kinds['wrong-audience'].payload)).toEqual({ ...withoutTimes(control.payload), aud: 'https://fhir.attacker.example/fhir' });
      expect(withoutTimes(kinds['wrong-issuer'].payload)).toEqual({ ...withoutTimes(control.payload), iss: 'https://idp.attacker.example' });
      for (const kind of ['wrong-audience', 'wrong-issuer'] as const) {
        const p = kinds[kind].payload;
        expect([p.nbf, p.exp]).toEqual([p.iat, p.iat + 600]);
      }
    });

    test("a test's claims go over the real ones, a null drops one, and the flaw still wins", async () => {
      const token = await oidc.forge('wrong-audience', { sub: 'backend', client_id: 'backend', scope: 'system/*.rs', patient: null, fhirUser: null, aud: AUDIENCE });
      expect(withoutTimes(decodeJwt(token).payload)).toEqual({ iss: oidc.issuer, aud: 'https://fhir.attacker.example/fhir', sub: 'backend', client_id: 'backend', scope: 'system/*.rs' });
      await expect(oidc.forge('no-such-kind' as ForgedKind)).rejects.toThrow(/admin \/forge answered 400: Error: unknown forgery no-such-kind/);
    });
  });
});

describe('key rotation', () => {
  let oidc: OidcProvider;

  beforeAll(async () => {
    oidc = await startOidcProvider({ audience: AUDIENCE, accounts: ACCOUNTS });
  });

  const kidOf = (res: TokenResponse) => decodeJwt(res.access_token).header.kid as string;

  test('a new key signs from then on; the JWKS keeps the old one, or drops it, as asked', async () => {
    const first = await oidc.clientCredentialsToken();
    const opaque = await oidc.opaqueToken();
    expect(kidOf(first)).toBe('key-1');

    expect(await oidc.rotateKey({ keepOld: true })).toEqual({ kid: 'key-2', kids: ['key-2', 'key-1'] });
    const jwks2 = await oidc.jwks();
    expect(jwks2.keys.map((k) => k.kid)).toEqual(['key-2', 'key-1']);
    const second = await oidc.clientCredentialsToken();
    expect(kidOf(second)).toBe('key-2');
    expect(verifyingKids(second.access_token, jwks2)).toEqual(['key-2']);
    expect(verifyingKids(first.access_token, jwks2)).toEqual(['key-1']);
    expect(decodeJwt(await oidc.forge('control')).header.kid).toBe('key-2');

    expect(await oidc.rotateKey({ keepOld: false })).toEqual({ kid: 'key-3', kids: ['key-3'] });
    const jwks3 = await oidc.jwks();
    expect(jwks3.keys.map((k) => k.kid)).toEqual(['key-3']);
    const third = await oidc.authorizationCodeToken({ scope: 'launch/patient patient/*.rs', patient: 'p1' });
    expect(kidOf(third)).toBe('key-3');
    expect(third.patient).toBe('p1');
    expect(verifyingKids(third.access_token, jwks3)).toEqual(['key-3']);
    expect(verifyingKids(first.access_token, jwks3)).toEqual([]);
    expect(verifyingKids(second.access_token, jwks3)).toEqual([]);
    // The provider's state outlives its keys: a token issued before both rotations is still known.
    expect(await oidc.introspect(opaque.access_token)).toMatchObject({ active: true, client_id: 'opaque-backend' });
  });
});

describe.each([
  ['ES256', { kty: 'EC', crv: 'P-256', use: 'sig', kid: 'key-1', alg: 'ES256', x: expect.any(String), y: expect.any(String) }],
  ['EdDSA', { kty: 'OKP', crv: 'Ed25519', use: 'sig', kid: 'key-1', alg: 'EdDSA', x: expect.any(String) }],
] as const)('an %s provider with its own claim names', (alg, publicJwk) => {
  let oidc: OidcProvider;

  beforeAll(async () => {
    oidc = await startOidcProvider({ audience: AUDIENCE, alg, patientClaim: 'smart_patient', fhirUserClaim: 'smart_user', accounts: ACCOUNTS });
  });

  test('signs access and ID tokens with its algorithm and names the launch patient as configured', async () => {
    const jwks = await oidc.jwks();
    expect(jwks.keys).toEqual([publicJwk]);
    const res = await oidc.authorizationCodeToken({ scope: 'openid fhirUser launch/patient patient/*.rs', patient: 'p9' });
    expect(res.patient).toBe('p9');
    const { header, payload } = decodeJwt(res.access_token);
    expect(header).toEqual({ alg, typ: 'at+jwt', kid: 'key-1' });
    expect(verifyingKids(res.access_token, jwks)).toEqual(['key-1']);
    expect(withoutTimes(payload)).toEqual({
      iss: oidc.issuer,
      aud: AUDIENCE,
      sub: 'clinician',
      client_id: 'app',
      scope: 'openid fhirUser launch/patient patient/*.rs',
      smart_patient: 'p9',
      smart_user: 'Practitioner/clinician',
    });
    expect(decodeJwt(res.id_token!).header.alg).toBe(alg);
    expect(verifyingKids(res.id_token!, jwks)).toEqual(['key-1']);

    const forged = decodeJwt(await oidc.forge('expired'));
    expect(forged.header).toEqual({ alg, typ: 'at+jwt', kid: 'key-1' });
    expect(forged.payload).toMatchObject({ smart_patient: 'example', smart_user: 'Practitioner/clinician' });
    expect(forged.payload).not.toHaveProperty('patient');
  });
});
