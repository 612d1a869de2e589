// Rules that match who asks (clients, scopes, a launch patient), and the authorization block:
// identity routes requests to tiers, rules for other identities fall through to the next,
// identity rules without authorization are refused at load, a rule no identity can reach is
// reported, and the block's own mistakes (an HMAC or `none` algorithm, a URL that is not one)
// are refused with file, line and column.

import type { Identity } from '../../src/auth/identity';
import { parseScopes } from '../../src/auth/scopes';
import { compilePolicy } from '../../src/policy';
import { I, loadErrors } from './helpers';

const AUTH = `authorization:
  issuer: https://idp.test/realms/fhir
  audience: https://fhir.test/fhir
`;

const POLICY = `${AUTH}tiers:
  - name: patient-apps
    upstreams: ['http://127.0.0.1:9']
  - name: read
    upstreams: ['http://127.0.0.1:9']
  - name: write
    upstreams: ['http://127.0.0.1:9']
rules:
  - resources: ["*"]
    interactions: [read, search-type]
    patient: true
    tier: patient-apps
  - resources: [Observation]
    interactions: [create]
    clients: [lab-system]
    tier: write
  - resources: [Observation]
    interactions: [create]
    scopes: [system/Observation.c]
    deny: true
  - resources: ["*"]
    interactions: [read, search-type]
    tier: read
`;

function who(o: { clientId?: string; scopes?: string; patient?: string }): Identity {
  const scopes = (o.scopes ?? '').split(' ').filter(Boolean);
  return {
    issuer: 'https://idp.test/realms/fhir',
    scopes,
    grants: parseScopes(scopes),
    expiresAt: Date.now() + 60_000,
    verifiedBy: 'jwt',
    ...(o.clientId ? { clientId: o.clientId } : {}),
    ...(o.patient ? { patient: o.patient } : {}),
  };
}

function tierOrRefusal(decide: () => { name: string }): string {
  try {
    return decide().name;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

test('identity routes requests to tiers; rules for other identities fall through', () => {
  const policy = compilePolicy(POLICY, 'p.yaml');
  const read = I('read', { resourceType: 'Observation', id: '1' });
  const create = I('create', { resourceType: 'Observation' });
  expect(tierOrRefusal(() => policy.decide(read, who({ patient: 'p1' })))).toBe('patient-apps');
  expect(tierOrRefusal(() => policy.decide(read, who({ clientId: 'ehr' })))).toBe('read');
  expect(tierOrRefusal(() => policy.decide(read))).toBe('read');
  expect(tierOrRefusal(() => policy.decide(create, who({ clientId: 'lab-system' })))).toBe('write');
  expect(tierOrRefusal(() => policy.decide(create, who({ clientId: 'other', scopes: 'system/Observation.c' })))).toBe('refused: create of Observation is denied by the policy (rules[2])');
  expect(tierOrRefusal(() => policy.decide(create, who({ clientId: 'other' })))).toBe('refused: no policy rule allows create of Observation');
  // The same identity object decides the same way every time (its table is remembered with it).
  const lab = who({ clientId: 'lab-system' });
  expect([1, 2, 3].map(() => tierOrRefusal(() => policy.decide(create, lab)))).toEqual(['write', 'write', 'write']);
  expect(policy.authorization).toMatchObject({ issuer: 'https://idp.test/realms/fhir', audience: 'https://fhir.test/fhir', patientClaim: 'patient', clockSkewSeconds: 30 });
});

test('the read-only derivation sees the identity rules: a tier only an identity rule writes through is not read-only', () => {
  const policy = compilePolicy(POLICY, 'p.yaml');
  expect(policy.tiers.map((t) => [t.name, t.readOnly])).toEqual([
    ['patient-apps', true],
    ['read', true],
    ['write', false],
  ]);
});

test('an identity rule shadowed for every identity it names is reported', () => {
  const policy = compilePolicy(
    `${AUTH}tiers:
  - name: read
    upstreams: ['http://127.0.0.1:9']
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
  - resources: [Patient]
    interactions: [read]
    clients: [portal]
    deny: true
`,
    'p.yaml',
  );
  expect(policy.warnings).toEqual(['p.yaml: rules[1] never matches: earlier rules decide everything it covers for the identities it names']);
});

test('identity rules need an authorization block', () => {
  expect(
    loadErrors(`tiers:
  - name: read
    upstreams: ['http://127.0.0.1:9']
rules:
  - resources: ["*"]
    interactions: [read]
    clients: [portal]
    tier: read
`),
  ).toEqual(['p.yaml:7:14: rules[0].clients: clients matches who asks, which only a policy with an authorization: block knows']);
});

test("the authorization block's mistakes are refused where they are", () => {
  expect(
    loadErrors(`authorization:
  issuer: not a url
  audience: https://fhir.test/fhir
  algorithms: [RS256, HS256, none]
  clockSkewSeconds: 900
tiers:
  - name: read
    upstreams: ['http://127.0.0.1:9']
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`),
  ).toEqual([
    'p.yaml:2:11: authorization.issuer: "not a url" is not a URL',
    'p.yaml:4:23: authorization.algorithms[1]: "HS256" is not accepted: tokens must be signed with one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (never none, never an HMAC)',
    'p.yaml:4:30: authorization.algorithms[2]: "none" is not accepted: tokens must be signed with one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (never none, never an HMAC)',
    'p.yaml:5:21: authorization.clockSkewSeconds: expected an integer from 0 to 300, found 900',
  ]);
});
