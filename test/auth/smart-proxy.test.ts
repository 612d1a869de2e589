// SMART on FHIR at the real front door, with a real OpenID Connect provider (oidc-provider, in
// its own process) and the real reference worker behind it:
// - tokens: none (401 Bearer), client credentials, the code flow with PKCE and a launch
//   patient, a key rotation, expired and not-yet-valid tokens, wrong audience and issuer, a
//   token signed by another key, `alg: none`, an HMAC keyed with the issuer's public key, an
//   opaque token introspected and then revoked, the issuer down; every refusal a 401 with its
//   challenge that reaches no worker;
// - scopes: 403 insufficient_scope for a type the token was not granted, through a search's
//   reach too;
// - leaks: a patient-scoped token never receives a byte of another patient's data, through
//   _include, _revinclude, _has, chains, _type, compartments, system searches, batches and
//   transactions, reads, vreads, history and $everything, and "exists elsewhere" answers
//   exactly as "does not exist"; its writes stay inside its compartment.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { closeClients, send, type Reply } from '../helpers/http-client';
import { scrape, value } from '../helpers/metrics-text';
import { OidcProvider, type Forged } from '../helpers/oidc';
import { poll } from '../helpers/poll';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { fhirRequest, startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';

const AUDIENCE = 'https://fhir.test/fhir';

let dir: string;
let oidc: OidcProvider;
let worker: WorkerProcess;
let proxy: ProxyProcess;
/** The launch patient p1's token from the code flow (patient/*.cruds). */
let patientToken: string;

const obs = (id: string, subject: string, extra: object = {}) => ({ resourceType: 'Observation', id, status: 'final', code: { text: 'weight' }, subject: { reference: subject }, ...extra });

/**
 * Another patient's records, as they could show in a body. (p1's own o4 names p2 as its
 * performer: that reference is p1's data; p2's record is not.)
 */
const OTHERS = /"id":"p2"|"family":"Two"|"id":"o2"|"id":"o3"|"id":"e2"/;

async function seed(): Promise<void> {
  const put = async (type: string, body: { id: string }) => {
    const res = await fhirRequest(worker.socket, 'PUT', `/${type}/${body.id}`, body);
    expect([200, 201]).toContain(res.status);
  };
  await put('Patient', { resourceType: 'Patient', id: 'p1', name: [{ family: 'One' }] } as never);
  await put('Patient', { resourceType: 'Patient', id: 'p2', name: [{ family: 'Two' }] } as never);
  await put('Practitioner', { resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Doc' }] } as never);
  await put('Observation', obs('o1', 'Patient/p1', { performer: [{ reference: 'Practitioner/dr' }] }) as never);
  await put('Observation', obs('o2', 'Patient/p2') as never);
  // p1's observation naming p2 as its performer: including the performer must not bring p2 in.
  await put('Observation', obs('o4', 'Patient/p1', { performer: [{ reference: 'Patient/p2' }] }) as never);
  await put('Observation', obs('o3', 'Patient/p2', { performer: [{ reference: 'Practitioner/dr' }] }) as never);
  await put('Encounter', { resourceType: 'Encounter', id: 'e2', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/p2' } } as never);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-smart-'));
  oidc = await OidcProvider.start(AUDIENCE, ['k1']);
  worker = await startWorker({ db: path.join(dir, 'fhir.db') });
  await seed();
  writeFileSync(path.join(dir, 'introspection.secret'), 'fhirguard-secret\n');
  proxy = await startProxy({
    dir,
    policy: [
      'authorization:',
      `  issuer: ${oidc.issuer}`,
      `  audience: ${AUDIENCE}`,
      '  introspection:',
      `    endpoint: ${oidc.issuer}/token/introspection`,
      '    clientId: fhirguard',
      `    clientSecretFile: ${path.join(dir, 'introspection.secret')}`,
      '    cacheSeconds: 1',
      'tiers:',
      `  - { name: all, upstreams: ['unix:${worker.socket}'] }`,
      'rules:',
      '  - resources: ["*"]',
      '    interactions: [read, vread, search-type, search-system, history-instance, history-type, create, update, patch, delete, batch, transaction, capabilities, operation]',
      '    tier: all',
      '',
    ].join('\n'),
  });
}, 180_000);

afterAll(async () => {
  closeClients();
  await stopAllProxies();
  await stopAllWorkers();
  await oidc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const F = '/fhir';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const as = (token: string, method: string, target: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
  send(proxy.origin, method, `${F}${target}`, { headers: { ...bearer(token), ...headers }, ...(body !== undefined ? { body: body as object } : {}) });

/** How many requests the worker's tier got: what a refusal must leave unchanged. */
async function forwarded(): Promise<number> {
  const { samples } = await scrape(proxy.adminUrl);
  return samples.filter((s) => s.name === 'fhirguard_upstream_duration_seconds_count' && s.labels.tier === 'all').reduce((n, s) => n + s.value, 0);
}

describe('tokens', () => {
  test('the CapabilityStatement and the SMART configuration are public and name the issuer', async () => {
    const cs = await send(proxy.origin, 'GET', `${F}/metadata`);
    expect(cs.status).toBe(200);
    expect(cs.json.rest[0].security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const uris = cs.json.rest[0].security.extension[0].extension.map((e: { url: string; valueUri: string }) => [e.url, e.valueUri]);
    expect(uris).toEqual([
      ['authorize', `${oidc.issuer}/auth`],
      ['token', `${oidc.issuer}/token`],
    ]);
    const smart = await send(proxy.origin, 'GET', `${F}/.well-known/smart-configuration`);
    expect(smart.status).toBe(200);
    expect(smart.json).toMatchObject({ issuer: oidc.issuer, token_endpoint: `${oidc.issuer}/token`, authorization_endpoint: `${oidc.issuer}/auth`, code_challenge_methods_supported: ['S256'] });
  });

  test('no token: 401 with a bare Bearer challenge, nothing forwarded', async () => {
    const before = await forwarded();
    const res = await send(proxy.origin, 'GET', `${F}/Patient/p1`);
    expect([res.status, res.headers['www-authenticate'], res.json.resourceType, res.json.issue[0].code]).toEqual([401, 'Bearer', 'OperationOutcome', 'login']);
    expect(await forwarded()).toBe(before);
  });

  test('client credentials: a backend reads what its system scopes grant', async () => {
    const token = await oidc.clientCredentials('system/*.rs');
    const res = await as(token, 'GET', '/Patient/p2');
    expect([res.status, res.json.id]).toEqual([200, 'p2']);
  });

  test.each<Forged>(['alg-none', 'hmac-public-pem', 'hmac-public-jwk', 'other-key', 'other-key-real-kid'])('a forged token (%s): 401 invalid_token, nothing forwarded', async (kind) => {
    const before = await forwarded();
    const res = await as(oidc.forge(kind), 'GET', '/Patient/p1');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token", error_description="/);
    expect(res.json.resourceType).toBe('OperationOutcome');
    expect(await forwarded()).toBe(before);
  });

  test.each([
    ['expired', { exp: Math.floor(Date.now() / 1000) - 120 }, /expired/],
    ['not yet valid', { nbf: Math.floor(Date.now() / 1000) + 600 }, /nbf/],
    ['for another audience', { aud: 'https://other.test/fhir' }, /aud/],
    ['from another issuer', { iss: 'https://evil.test' }, /iss/],
  ])('a token signed by the issuer but %s: 401 invalid_token', async (_what, claims, why) => {
    const res = await as(oidc.signed('k1', claims), 'GET', '/Patient/p1');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(why);
  });

  test('scopes that do not grant the type, or what a search reaches: 403 insufficient_scope', async () => {
    const token = await oidc.clientCredentials('system/Patient.rs');
    const before = await forwarded();
    const read = await as(token, 'GET', '/Observation/o1');
    expect(read.status).toBe(403);
    expect(read.headers['www-authenticate']).toMatch(/^Bearer error="insufficient_scope"/);
    const reach = await as(token, 'GET', '/Patient?_revinclude=Observation:subject');
    expect([reach.status, reach.json.issue[0].diagnostics]).toEqual([403, expect.stringMatching(/needs a scope granting s on Observation/)]);
    expect(await forwarded()).toBe(before);
  });

  test('a token in the query is refused', async () => {
    const token = await oidc.clientCredentials('system/*.rs');
    const res = await send(proxy.origin, 'GET', `${F}/Patient?access_token=${token}`);
    expect(res.status).toBe(400);
  });

  test('an opaque token is introspected; once revoked it is refused within the cache time', async () => {
    const token = await oidc.clientCredentials('system/*.rs', { id: 'opaque-backend', secret: 'opaque-secret' });
    expect(token.split('.')).toHaveLength(1);
    expect((await as(token, 'GET', '/Patient/p1')).status).toBe(200);
    await oidc.revoke(token);
    await new Promise((r) => setTimeout(r, 1500));
    const res = await as(token, 'GET', '/Patient/p1');
    expect([res.status, res.headers['www-authenticate']]).toEqual([401, expect.stringMatching(/not active/)]);
  });

  test('the issuer rotates its key: tokens of the new key pass, a new token of the dropped key does not', async () => {
    const old = await oidc.clientCredentials('system/*.rs');
    expect((await as(old, 'GET', '/Patient/p1')).status).toBe(200);
    await oidc.rotate(['k2']);
    const fresh = await oidc.clientCredentials('system/*.rs');
    expect(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url').toString()).kid).toBe('k2');
    // The JWKS is fetched again for an unknown key id at most every few seconds: the new key is
    // accepted once that pause has passed.
    await poll('a token of the new key accepted', async () => (await as(fresh, 'GET', '/Patient/p1')).status === 200, { timeoutMs: 20_000, intervalMs: 500 });
    // Signed with k1 now gone from the JWKS, never seen before: no key matches.
    expect((await as(oidc.signed('k1', { jti: 'after-rotation' }), 'GET', '/Patient/p1')).status).toBe(401);
  }, 60_000);

  test('the issuer down: a token already verified still passes; one needing the issuer is refused with 503', async () => {
    const known = await oidc.clientCredentials('system/*.rs');
    expect((await as(known, 'GET', '/Patient/p1')).status).toBe(200);
    const opaque = await oidc.clientCredentials('system/*.rs', { id: 'opaque-backend', secret: 'opaque-secret' });
    await oidc.stopChild();
    try {
      expect((await as(known, 'GET', '/Patient/p1')).status).toBe(200);
      const res = await as(opaque, 'GET', '/Patient/p1');
      expect([res.status, res.json.issue[0].code]).toEqual([503, 'transient']);
    } finally {
      await oidc.rotate(['k2']);
    }
  }, 60_000);

  test('refusals are counted by reason', async () => {
    const { samples } = await scrape(proxy.adminUrl);
    for (const reason of ['no-token', 'invalid-token', 'insufficient-scope', 'token-in-query', 'issuer-unavailable']) {
      expect([reason, value(samples, 'fhirguard_refusals_total', { reason }) > 0]).toEqual([reason, true]);
    }
  });
});

describe('a patient-scoped token (the code flow, launch patient p1)', () => {
  const get = (target: string) => as(patientToken, 'GET', target);

  // After the key rotation above: the token is signed with the issuer's key of now.
  beforeAll(async () => {
    patientToken = (await oidc.codeFlow('launch/patient patient/*.cruds', 'alice', 'p1')).accessToken;
  });

  test('the token carries the launch patient and reads its own record', async () => {
    const claims = JSON.parse(Buffer.from(patientToken.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ patient: 'p1', aud: AUDIENCE, iss: oidc.issuer });
    const res = await get('/Patient/p1');
    expect([res.status, res.json.id]).toEqual([200, 'p1']);
  });

  test.each([
    ['/Patient/p2', '/Patient/nobody'],
    ['/Observation/o2', '/Observation/nothing'],
    ['/Observation/o2/_history/1', '/Observation/nothing/_history/1'],
    ['/Observation/o2/_history', '/Observation/nothing/_history'],
    ['/Encounter/e2', '/Encounter/nothing'],
    ['/Patient/p2/$everything', '/Patient/nobody/$everything'],
  ])("%s (another patient's) answers exactly as %s (nothing there)", async (elsewhere, nowhere) => {
    const [a, b] = [await get(elsewhere), await get(nowhere)];
    expect(a.status).toBe(404);
    expect([a.status, a.headers['content-type'], a.text]).toEqual([b.status, b.headers['content-type'], b.text]);
    expect(a.text).not.toMatch(OTHERS);
  });

  test.each([
    '/Observation',
    '/Observation?code:text=weight',
    '/Observation?_include=Observation:performer',
    '/Observation?_include=Observation:subject',
    '/Patient?_revinclude=Observation:subject',
    '/Patient',
    '/Encounter',
    '/Patient/p1/Observation',
    '/Patient/p1/$everything',
  ])("%s: only the patient's own data comes back", async (target) => {
    const res = await get(target);
    expect(res.status).toBe(200);
    expect(res.text).not.toMatch(OTHERS);
    const ids = (res.json.entry ?? []).map((e: { resource: { resourceType: string; id: string } }) => `${e.resource.resourceType}/${e.resource.id}`);
    for (const id of ids) expect(['Patient/p1', 'Observation/o1', 'Observation/o4', 'Practitioner/dr']).toContain(id);
    // A total, when kept, counts only what came back.
    expect(res.json.total === undefined || res.json.total <= ids.length).toBe(true);
  });

  test('a search narrowed to the patient costs one upstream request, no more', async () => {
    const before = await forwarded();
    expect((await get('/Observation?code:text=weight')).status).toBe(200);
    expect(await forwarded()).toBe(before + 1);
  });

  test.each([
    ['GET', '/Observation?subject.name=Two'],
    ['GET', '/Practitioner?_has:Observation:performer:subject=Patient/p2'],
    ['GET', '/?_type=Observation'],
    ['GET', '/Observation/_history'],
    ['GET', '/Patient/p2/Observation'],
  ])('%s %s: refused before anything is sent', async (method, target) => {
    const before = await forwarded();
    const res = await as(patientToken, method, target);
    expect([403, 404]).toContain(res.status);
    expect(res.text).not.toMatch(/"id":"o2"|"id":"o3"/);
    expect(await forwarded()).toBe(before);
  });

  test.each(['batch', 'transaction'])('a %s is refused before anything is sent', async (type) => {
    const before = await forwarded();
    const bundle = { resourceType: 'Bundle', type, entry: [{ request: { method: 'GET', url: 'Observation/o2' } }] };
    const res = await as(patientToken, 'POST', '/', bundle);
    expect(res.status).toBe(403);
    expect(await forwarded()).toBe(before);
  });

  test("writes stay inside the compartment, and another patient's resource is not found", async () => {
    expect((await as(patientToken, 'POST', '/Observation', obs('x', 'Patient/p2'))).status).toBe(403);
    const created = await as(patientToken, 'POST', '/Observation', obs('x', 'Patient/p1'));
    expect(created.status).toBe(201);
    const nowhere = await as(patientToken, 'PUT', '/Observation/nothing-here', obs('nothing-here', 'Patient/p1'));
    expect(nowhere.status).toBe(201); // an update that creates, inside the compartment
    const others = await as(patientToken, 'PUT', '/Observation/o2', obs('o2', 'Patient/p1'));
    const none = await as(patientToken, 'DELETE', '/Observation/never-was');
    expect([others.status, others.text]).toEqual([404, none.text]);
    expect((await as(patientToken, 'DELETE', '/Observation/o3')).status).toBe(404);
    expect((await as(patientToken, 'PUT', '/Observation/o1', obs('o1', 'Patient/p2'))).status).toBe(403);
    const patch = await as(patientToken, 'PATCH', '/Observation/o1', [{ op: 'replace', path: '/subject/reference', value: 'Patient/p2' }], { 'content-type': 'application/json-patch+json' });
    expect(patch.status).toBe(403);
    const kept = await as(patientToken, 'PUT', '/Observation/o1', obs('o1', 'Patient/p1', { status: 'amended' }));
    expect(kept.status).toBe(200);
    // Nothing of the above changed another patient's records.
    const o2 = await fhirRequest(worker.socket, 'GET', '/Observation/o2');
    expect([o2.status, (o2.json as { subject: { reference: string } }).subject.reference]).toEqual([200, 'Patient/p2']);
    expect((await fhirRequest(worker.socket, 'GET', '/Observation/o3')).status).toBe(200);
  });
});
