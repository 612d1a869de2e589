// Decisions: first match wins, no match denies, "*" covers every type and the system level,
// operations by name; the compiled table agrees with a plain rule-by-rule scan on random
// policies; tier settings and their derivations.

import { INTERACTION_KINDS, type InteractionKind } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { I, outcome, policyOf, refusal } from './helpers';

describe('decisions', () => {
  const policy = policyOf(`tiers:
  - name: public
  - name: clinical
  - name: admin
rules:
  - resources: [Practitioner]
    interactions: [search-type]
    deny: true
  - resources: [Practitioner, Organization]
    interactions: [read, search-type]
    tier: public
  - resources: ["*"]
    interactions: [read, vread, search-type, capabilities, history-system]
    tier: clinical
  - resources: [Patient]
    interactions: [operation]
    operations: ["$everything"]
    tier: clinical
  - resources: ["*"]
    interactions: [operation]
    operations: ["$validate"]
    tier: public
  - resources: [Observation]
    interactions: [create, operation]
    tier: admin
  - resources: ["*"]
    interactions: [delete]
    deny: true
`);

  test('first match wins', () => {
    // rules[0] denies Practitioner searches before rules[1] could allow them
    expect(refusal(policy, I('search-type', { resourceType: 'Practitioner' }))).toBe('search-type of Practitioner is denied by the policy (rules[0])');
    // ...but reading one by id falls through to rules[1]
    expect(outcome(policy, I('read', { resourceType: 'Practitioner', id: '1' }))).toEqual({ tier: 'public' });
    // Organization searches match rules[1] (public) before the broader rules[2] (clinical)
    expect(outcome(policy, I('search-type', { resourceType: 'Organization' }))).toEqual({ tier: 'public' });
    expect(outcome(policy, I('search-type', { resourceType: 'Patient' }))).toEqual({ tier: 'clinical' });
  });

  test('no matching rule denies, saying so', () => {
    expect(refusal(policy, I('update', { resourceType: 'Patient', id: '1' }))).toBe('no policy rule allows update of Patient');
    expect(refusal(policy, I('update', { resourceType: 'Patient', conditional: true }))).toBe('no policy rule allows conditional update of Patient');
    expect(refusal(policy, I('batch', { entries: [] }))).toBe('no policy rule allows batch');
    expect(refusal(policy, I('history-type', { resourceType: 'Patient' }))).toBe('no policy rule allows history-type of Patient');
  });

  test('a deny rule names itself', () => {
    expect(refusal(policy, I('delete', { resourceType: 'Observation', id: '1' }))).toBe('delete of Observation is denied by the policy (rules[6])');
  });

  test('"*" covers every type and the system level; named types only themselves', () => {
    expect(outcome(policy, I('capabilities'))).toEqual({ tier: 'clinical' });
    expect(outcome(policy, I('history-system'))).toEqual({ tier: 'clinical' });
    expect(outcome(policy, I('vread', { resourceType: 'ImplementationGuide', id: '1', versionId: '2' }))).toEqual({ tier: 'clinical' });
    expect(outcome(policy, I('create', { resourceType: 'Observation' }))).toEqual({ tier: 'admin' });
    expect(refusal(policy, I('create', { resourceType: 'Condition' }))).toBe('no policy rule allows create of Condition');
  });

  test('operations: by name, any name, and by level', () => {
    const op = (operation: string, resourceType?: string, id?: string) => I('operation', { operation, ...(resourceType ? { resourceType } : {}), ...(id ? { id } : {}) });
    expect(outcome(policy, op('$everything', 'Patient', '1'))).toEqual({ tier: 'clinical' });
    expect(outcome(policy, op('$validate', 'Patient'))).toEqual({ tier: 'public' });
    expect(outcome(policy, op('$validate'))).toEqual({ tier: 'public' }); // "*" covers the system level
    expect(outcome(policy, op('$everything', 'Observation'))).toEqual({ tier: 'admin' }); // rules[5]: any operation on Observation
    expect(outcome(policy, op('$lastn', 'Observation'))).toEqual({ tier: 'admin' });
    expect(refusal(policy, op('$everything', 'Encounter', '9'))).toBe('no policy rule allows operation $everything on Encounter/[id]');
    expect(refusal(policy, op('$meta'))).toBe('no policy rule allows operation $meta at the system level');
  });

  test('a refusal is a 403 FhirError with a forbidden OperationOutcome', () => {
    let err: unknown;
    try {
      policy.decide(I('delete', { resourceType: 'Patient', id: '1' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FhirError);
    const e = err as FhirError;
    expect([e.status, e.reason]).toEqual([403, 'policy']);
    expect(e.toOutcome()).toEqual({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'forbidden', diagnostics: 'delete of Patient is denied by the policy (rules[6])' }],
    });
  });
});

describe('the compiled table agrees with scanning the rules in order', () => {
  /** Small deterministic PRNG, so a failure reproduces. */
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const TYPES = ['Patient', 'Observation', 'Encounter', 'Practitioner', 'Condition'];
  const OPS = ['$validate', '$everything', '$x'];
  const SYSTEM = new Set<InteractionKind>(['batch', 'transaction', 'history-system', 'search-system', 'capabilities']);
  // search-system reaches every type, which is the reach tests' subject, not this one's.
  const KINDS = INTERACTION_KINDS.filter((k) => k !== 'search-system');

  interface Rule {
    resources: string[];
    interactions: InteractionKind[];
    operations?: string[];
    tier?: string;
  }

  function pick<T>(r: () => number, from: readonly T[], max: number): T[] {
    const n = 1 + Math.floor(r() * max);
    return [...new Set(Array.from({ length: n }, () => from[Math.floor(r() * from.length)]))];
  }

  function randomRules(r: () => number): Rule[] {
    return Array.from({ length: 1 + Math.floor(r() * 8) }, () => {
      const all = r() < 0.4;
      const interactions = pick(r, all ? KINDS : KINDS.filter((k) => !SYSTEM.has(k)), 4);
      return {
        resources: all ? ['*'] : pick(r, TYPES, 3),
        interactions,
        ...(interactions.includes('operation') && r() < 0.6 ? { operations: pick(r, OPS, 2) } : {}),
        ...(r() < 0.25 ? {} : { tier: `t${Math.floor(r() * 3)}` }),
      };
    });
  }

  function yamlOf(rules: Rule[]): string {
    const out = ['tiers:', '  - name: t0', '  - name: t1', '  - name: t2', 'rules:'];
    for (const rule of rules) {
      out.push(`  - resources: ${JSON.stringify(rule.resources)}`, `    interactions: [${rule.interactions.join(', ')}]`);
      if (rule.operations) out.push(`    operations: ${JSON.stringify(rule.operations)}`);
      out.push(rule.tier ? `    tier: ${rule.tier}` : '    deny: true');
    }
    return out.join('\n');
  }

  function scan(rules: Rule[], kind: InteractionKind, type: string, op?: string): string {
    const hit = rules.find(
      (rule) =>
        (rule.resources.includes('*') || (type !== '' && rule.resources.includes(type))) &&
        rule.interactions.includes(kind) &&
        (kind !== 'operation' || !rule.operations || rule.operations.includes(op as string)),
    );
    return hit?.tier ?? 'refused';
  }

  test('on 300 random policies, every kind × type × operation', () => {
    const r = rng(20240611);
    let compared = 0;
    const allowedSeen = new Set<string>();
    for (let n = 0; n < 300; n++) {
      const rules = randomRules(r);
      const policy = policyOf(yamlOf(rules));
      for (const kind of KINDS) {
        const types = SYSTEM.has(kind) ? [''] : kind === 'operation' ? ['', ...TYPES, 'Goal'] : [...TYPES, 'Goal'];
        for (const type of types) {
          for (const op of kind === 'operation' ? [...OPS, '$other'] : [undefined]) {
            const i = I(kind, {
              ...(type ? { resourceType: type } : {}),
              ...(op ? { operation: op } : {}),
              ...(kind === 'batch' || kind === 'transaction' ? { entries: [] } : {}),
            });
            const got = outcome(policy, i);
            const name = 'tier' in got ? got.tier : 'refused';
            expect([yamlOf(rules), kind, type, op, name]).toEqual([yamlOf(rules), kind, type, op, scan(rules, kind, type, op)]);
            if (name !== 'refused') allowedSeen.add(name);
            compared++;
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(300 * 60);
    expect([...allowedSeen].sort()).toEqual(['t0', 't1', 't2']);
  });
});

describe('tiers', () => {
  test('defaults, ranks and derived read-only', () => {
    const p = policyOf(`tiers:
  - name: read
  - name: check
  - name: write
  - name: remote
    upstreams: ["http://127.0.0.1:9101", "unix:/run/fhirguard/r.sock"]
    timeoutMs: 2500
    mode: audit
    enforcement: required
rules:
  - resources: ["*"]
    interactions: [read, search-type]
    tier: read
  - resources: ["*"]
    interactions: [operation]
    operations: ["$validate", "$expand"]
    tier: check
  - resources: ["*"]
    interactions: [create]
    tier: write
  - resources: ["*"]
    interactions: [history-system]
    tier: remote
`);
    expect(p.tiers).toEqual([
      { name: 'read', upstreams: [], workers: 2, timeoutMs: 10000, mode: 'enforce', enforcement: 'preferred', readOnly: true, rank: 0 },
      { name: 'check', upstreams: [], workers: 2, timeoutMs: 10000, mode: 'enforce', enforcement: 'preferred', readOnly: true, rank: 1 },
      { name: 'write', upstreams: [], workers: 1, timeoutMs: 10000, mode: 'enforce', enforcement: 'preferred', readOnly: false, rank: 2 },
      {
        name: 'remote',
        upstreams: ['http://127.0.0.1:9101', 'unix:/run/fhirguard/r.sock'],
        workers: 0,
        timeoutMs: 2500,
        mode: 'audit',
        enforcement: 'required',
        readOnly: true,
        rank: 3,
      },
    ]);
    expect(p.tierByName.get('write')).toBe(p.tiers[2]);
    expect(Object.isFrozen(p.tiers[0])).toBe(true);
    expect(p.warnings).toEqual([]);
  });

  test('what may write: bundles, unknown and unnamed operations; readOnly: true accepted there', () => {
    const p = policyOf(`tiers:
  - name: bundles
  - name: anyop
  - name: custom
  - name: asserted
    readOnly: true
    workers: 3
rules:
  - resources: ["*"]
    interactions: [batch]
    tier: bundles
  - resources: [Patient]
    interactions: [operation]
    tier: anyop
  - resources: ["*"]
    interactions: [operation]
    operations: ["$report"]
    tier: custom
  - resources: ["*"]
    interactions: [operation]
    operations: ["$summary"]
    tier: asserted
`);
    expect(p.tiers.map((t) => [t.name, t.readOnly, t.workers])).toEqual([
      ['bundles', false, 1],
      ['anyop', false, 1],
      ['custom', false, 1],
      ['asserted', true, 3],
    ]);
  });

  test('warnings: a rule that never matches, a tier that serves nothing', () => {
    const p = policyOf(
      `tiers:
  - name: a
  - name: idle
rules:
  - resources: ["*"]
    interactions: [read, vread]
    tier: a
  - resources: [Patient]
    interactions: [read]
    deny: true
`,
      'w.yaml',
    );
    expect(p.warnings).toEqual(['w.yaml: rules[1] never matches: earlier rules decide everything it covers', "w.yaml: tier 'idle' serves nothing: no rule routes to it"]);
  });
});
