// What a reload may not change: every tier field pools, workers or confinement were made
// from, each change named; rules alone change nothing here.

import { compilePolicy } from '../../src/policy';
import { issuerChanges, tierChanges } from '../../src/policy/tier-changes';

const tiers = `tiers:
  - name: read
    upstreams: ["http://127.0.0.1:9001"]
    timeoutMs: 10000
  - name: write
    upstreams: ["http://127.0.0.1:9002"]
`;
const rules = `rules:
  - { resources: ["*"], interactions: [read, search-type], tier: read }
  - { resources: ["*"], interactions: [create, update], tier: write }
`;
const load = (text: string) => compilePolicy(text, 'policy.yaml');

test('a change of rules alone changes no tier', () => {
  const before = load(tiers + rules);
  const after = load(tiers + rules.replace('interactions: [read, search-type]', 'interactions: [read]'));
  expect(after.digest).not.toBe(before.digest);
  expect(tierChanges(before, after)).toEqual([]);
});

test('each changed tier field is named, as are tiers added and removed', () => {
  const before = load(tiers + rules);
  const after = load(
    tiers.replace('timeoutMs: 10000', 'timeoutMs: 5000').replace('127.0.0.1:9002', '127.0.0.1:9003') +
      '  - name: ops\n    upstreams: ["http://127.0.0.1:9004"]\n' +
      rules +
      '  - { resources: ["*"], interactions: [operation], tier: ops }\n',
  );
  expect(tierChanges(before, after)).toEqual([
    "tier 'ops' is new",
    "tier 'read': timeoutMs changes from 10000 to 5000",
    'tier \'write\': upstreams changes from ["http://127.0.0.1:9002"] to ["http://127.0.0.1:9003"]',
  ]);
  expect(tierChanges(after, before)).toContain("tier 'ops' is gone");
});

test("a rule that lets a tier write changes its readOnly, which its workers' mounts were made from", () => {
  const before = load(tiers + rules);
  const after = load(tiers + rules.replace('interactions: [read, search-type], tier: read', 'interactions: [read, search-type, delete], tier: read'));
  expect(tierChanges(before, after)).toEqual(["tier 'read': readOnly changes from true to false"]);
});

test("the token issuer's endpoints are compared, the rest of authorization is not", () => {
  const auth = (issuer: string, audience: string) => `authorization:\n  issuer: ${issuer}\n  audience: ${audience}\n`;
  const before = load(tiers + rules + auth('https://idp.example/realms/a', 'https://fhir.example'));
  expect(issuerChanges(before, load(tiers + rules + auth('https://idp.example/realms/a', 'https://other.example')))).toEqual([]);
  expect(issuerChanges(before, load(tiers + rules + auth('https://idp.example/realms/b', 'https://fhir.example')))).toHaveLength(1);
});
