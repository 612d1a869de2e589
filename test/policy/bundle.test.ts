// Batches and transactions: the bundle's own rule picks the tier, every entry is decided,
// and one refused entry refuses the whole bundle, naming its index.

import { classify } from '../../src/fhir/classify';
import type { Interaction } from '../../src/fhir/interaction';
import { I, outcome, P, policyOf } from './helpers';

const policy = policyOf(`tiers:
  - name: read
  - name: write
  - name: ops
rules:
  - resources: [Practitioner]
    interactions: [search-type]
    deny: true
  - resources: ["*"]
    interactions: [read, search-type, capabilities]
    tier: read
  - resources: ["*"]
    interactions: [create, update, patch]
    tier: write
  - resources: ["*"]
    interactions: [transaction]
    tier: ops
  - resources: ["*"]
    interactions: [batch]
    tier: write
  - resources: ["*"]
    interactions: [operation]
    operations: ["$validate"]
    tier: ops
  - resources: ["*"]
    interactions: [delete]
    deny: true
`);

const read = I('read', { resourceType: 'Patient', id: '1' });
const create = I('create', { resourceType: 'Observation' });
const del = I('delete', { resourceType: 'Patient', id: '2' });
const validate = I('operation', { resourceType: 'Patient', operation: '$validate' });

function bundle(kind: 'batch' | 'transaction', ...entries: Interaction[]): Interaction {
  return I(kind, { entries });
}

describe('bundle entries', () => {
  test('a bundle whose entries are all allowed goes whole to its own tier', () => {
    expect(outcome(policy, bundle('transaction', read, create, validate, read))).toEqual({ tier: 'ops' });
    expect(outcome(policy, bundle('batch', read, create))).toEqual({ tier: 'write' });
    expect(outcome(policy, bundle('transaction'))).toEqual({ tier: 'ops' });
  });

  test('a denied entry refuses the bundle, naming its index', () => {
    expect(outcome(policy, bundle('transaction', read, create, read, del, create))).toEqual({
      status: 403,
      reason: 'policy',
      diagnostics: 'transaction refused: Bundle.entry[3]: delete of Patient is denied by the policy (rules[6])',
      expression: ['Bundle.entry[3]'],
    });
  });

  test('the first refused entry is the one named', () => {
    const o = outcome(policy, bundle('transaction', read, I('history-type', { resourceType: 'Patient' }), del));
    expect(o).toMatchObject({ status: 403, diagnostics: 'transaction refused: Bundle.entry[1]: no policy rule allows history-type of Patient' });
  });

  test("an entry served by a more privileged tier than the bundle's refuses it", () => {
    expect(outcome(policy, bundle('batch', read, validate))).toEqual({
      status: 403,
      reason: 'policy',
      diagnostics: "batch refused: Bundle.entry[1]: operation $validate on Patient is served by tier 'ops', more privileged than tier 'write' that serves this batch",
      expression: ['Bundle.entry[1]'],
    });
  });

  test('entry searches get the reach checks', () => {
    const s = I('search-type', { resourceType: 'Encounter', params: [P('_include', 'Encounter:practitioner')] });
    expect(outcome(policy, bundle('batch', read, s))).toMatchObject({
      status: 403,
      diagnostics: 'batch refused: Bundle.entry[1]: Encounter?_include=Encounter:practitioner reaches Practitioner, which the policy does not allow reading',
    });
    const cond = I('update', { resourceType: 'Encounter', conditional: true, params: [P('practitioner.name', 'x')] });
    expect(outcome(policy, bundle('transaction', cond))).toMatchObject({
      diagnostics: 'transaction refused: Bundle.entry[0]: conditional update Encounter?practitioner.name reaches Practitioner, which the policy does not allow reading',
    });
  });

  test('a read-only tier serving a bundle refuses entries that may write', () => {
    const p = policyOf(`tiers:
  - name: write
  - name: bundles
    readOnly: true
rules:
  - resources: ["*"]
    interactions: [read, create]
    tier: write
  - resources: ["*"]
    interactions: [batch]
    tier: bundles
`);
    expect(p.tierByName.get('write')?.readOnly).toBe(false);
    expect(outcome(p, bundle('batch', create))).toMatchObject({
      status: 403,
      diagnostics: "batch refused: Bundle.entry[0]: create of Observation may write (tier 'write'), and tier 'bundles' that serves this batch is read-only",
    });
  });

  test('the bundle itself needs a rule', () => {
    const p = policyOf(`tiers: [{name: read}]
rules:
  - resources: ["*"]
    interactions: [read]
    tier: read
`);
    expect(outcome(p, bundle('batch', read))).toMatchObject({ status: 403, diagnostics: 'no policy rule allows batch' });
  });

  test('a nested bundle is refused; unclassified entries fail closed', () => {
    expect(outcome(policy, bundle('transaction', read, bundle('batch', read)))).toMatchObject({
      status: 400,
      diagnostics: 'transaction refused: Bundle.entry[1]: a batch cannot be nested in a transaction',
    });
    expect(() => policy.decide(I('transaction'))).toThrow('policy: transaction reached the policy without its classified entries');
  });

  test('a real transaction Bundle, classified', () => {
    const post = (entries: Record<string, unknown>[]) =>
      classify({
        method: 'POST',
        path: '/',
        query: '',
        headers: {},
        body: { resourceType: 'Bundle', type: 'transaction', entry: entries.map((request) => ({ request, resource: { resourceType: 'Patient' } })) },
      });
    expect(
      outcome(
        policy,
        post([
          { method: 'PUT', url: 'Patient/1' },
          { method: 'GET', url: 'Patient?name=x' },
        ]),
      ),
    ).toEqual({ tier: 'ops' });
    expect(
      outcome(
        policy,
        post([
          { method: 'PUT', url: 'Patient/1' },
          { method: 'GET', url: 'Encounter?practitioner.name=x' },
          { method: 'DELETE', url: 'Patient/1' },
        ]),
      ),
    ).toMatchObject({ status: 403, diagnostics: expect.stringMatching(/^transaction refused: Bundle\.entry\[1\]: Encounter\?practitioner\.name reaches Practitioner/) });
  });
});
