// A real OpenID Connect provider for the authorization tests (npm's oidc-provider, an ES module,
// hence a child process of its own): client credentials, authorization code with PKCE and a
// launch patient, introspection and revocation, JWT access tokens for one FHIR audience and
// opaque ones for one client. Its signing keys are files in a directory the test owns, so a
// restart with another key list is a key rotation, and the test can sign with a key itself.
//
// Configuration: the JSON in FG_OIDC ({ port, audience, keyDir, keys: [kid, ...] }; the first
// key signs). Prints one JSON line ({ issuer }) once it listens.
//
// The login and consent are not interactive: the interaction endpoint logs in the account the
// authorization request names in `login_hint` ("user|patient": the launch patient), grants
// every scope asked for, and sends the browser on, so a test can run the code flow over HTTP.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const config = JSON.parse(process.env.FG_OIDC);
const issuer = `http://127.0.0.1:${config.port}`;
const SMART_SCOPES = [
  'patient/*.rs',
  'patient/*.read',
  'patient/Observation.rs',
  'patient/Patient.rs',
  'patient/Patient.r',
  'patient/Observation.cruds',
  'patient/*.cruds',
  'user/*.rs',
  'user/*.cruds',
  'user/Patient.rs',
  'user/Observation.rs',
  'system/*.rs',
  'system/Patient.rs',
  'launch/patient',
  'fhirUser',
];

/** A key of the directory by id, made (RS256, private) the first time it is named. */
async function key(kid) {
  const file = path.join(config.keyDir, `${kid}.json`);
  if (!existsSync(file)) {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    writeFileSync(file, JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }));
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

const keys = await Promise.all(config.keys.map(key));

const provider = new Provider(issuer, {
  clients: [
    { client_id: 'backend', client_secret: 'backend-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    { client_id: 'opaque-backend', client_secret: 'opaque-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    { client_id: 'app', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1/callback'], response_types: ['code'] },
    { client_id: 'fhirguard', client_secret: 'fhirguard-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  jwks: { keys },
  cookies: { keys: ['fhirguard-test-cookie-key'] },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (resource !== config.audience) throw new Error(`unknown resource ${resource}`);
        return {
          scope: SMART_SCOPES.join(' '),
          audience: config.audience,
          accessTokenTTL: 600,
          accessTokenFormat: client.clientId === 'opaque-backend' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  // The launch patient and the user's FHIR resource, from the account ("user|patient").
  extraTokenClaims: (_ctx, token) => {
    const [user, patient] = String(token.accountId ?? '').split('|');
    return patient ? { patient, fhirUser: `Practitioner/${user}` } : undefined;
  },
});

/** The interaction: logs in the login_hint's account and grants what was asked, at once. */
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = String(details.params.login_hint ?? 'user');
  const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
  grant.addOIDCScope('openid');
  const requested = String(details.params.scope ?? '')
    .split(' ')
    .filter((s) => s && s !== 'openid');
  grant.addResourceScope(config.audience, requested.join(' '));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err?.stack ?? err));
    });
    return;
  }
  callback(req, res);
});
server.listen(config.port, '127.0.0.1', () => process.stdout.write(JSON.stringify({ issuer }) + '\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
