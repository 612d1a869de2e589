// Shared by the policy tests: interactions built directly (the policy's input contract) and
// decisions turned into comparable values.

import type { Interaction, SearchParam } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';
import { compilePolicy, PolicyError, type Policy } from '../../src/policy';

export function I(kind: Interaction['kind'], fields: Partial<Interaction> = {}): Interaction {
  const level: Interaction['level'] = fields.level ?? (fields.id !== undefined ? 'instance' : fields.resourceType !== undefined ? 'type' : 'system');
  return { kind, level, conditional: false, params: [], ...fields };
}

/** A search parameter as the client wrote it, e.g. P('subject:Patient.name', 'x'). */
export function P(written: string, value: string): SearchParam {
  if (written.startsWith('_has:')) return { name: '_has', modifier: written.slice(5), value };
  const dot = written.indexOf('.');
  const head = dot < 0 ? written : written.slice(0, dot);
  const colon = head.indexOf(':');
  const p: SearchParam = { name: colon < 0 ? head : head.slice(0, colon), value };
  if (colon >= 0) p.modifier = head.slice(colon + 1);
  if (dot >= 0) p.chain = written.slice(dot + 1);
  return p;
}

export type Outcome = { tier: string } | { status: number; reason: string; diagnostics: string; expression?: string[] };

/** The decision as data: the tier's name, or the refusal's status, reason and diagnostics. */
export function outcome(policy: Policy, i: Interaction): Outcome {
  try {
    return { tier: policy.decide(i).name };
  } catch (e) {
    if (!(e instanceof FhirError)) throw e;
    const issue = e.issues[0];
    return {
      status: e.status,
      reason: e.reason,
      diagnostics: e.issues.map((x) => x.diagnostics).join('; '),
      ...(issue.expression ? { expression: issue.expression } : {}),
    };
  }
}

/** The refusal's diagnostics; fails the test when the interaction was allowed. */
export function refusal(policy: Policy, i: Interaction): string {
  const o = outcome(policy, i);
  if ('tier' in o) throw new Error(`expected a refusal, got tier '${o.tier}'`);
  expect(o.status).toBe(403);
  expect(o.reason).toBe('policy');
  return o.diagnostics;
}

export function policyOf(text: string, file = 'test.yaml'): Policy {
  return compilePolicy(text, file);
}

/** The formatted issue lines of loading `text` (fails when it loads). */
export function loadErrors(text: string, file = 'p.yaml'): string[] {
  try {
    compilePolicy(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    const err = e as PolicyError;
    expect(err.message.split('\n')).toEqual(err.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`));
    return err.message.split('\n');
  }
  throw new Error('the policy loaded');
}
