// Policies the shared FHIR cases run under when they go through the proxy: the shipped
// policy itself, and the same with deletes allowed (the shipped policy denies them; its
// comment shows how an operator enables them), so that deletes reach a worker too.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/worker-process';
import type { Json } from './target';

export const SHIPPED_POLICY = join(REPO_ROOT, 'profiles', 'policy.yaml');

export function shippedPolicy(): Json {
  return parse(readFileSync(SHIPPED_POLICY, 'utf8'));
}

/** `policy` with its rule denying delete replaced by one routing every delete to the write tier. */
export function withDeletes(policy: Json): Json {
  const rules = policy.rules as Json[];
  const at = rules.findIndex((r) => r.deny === true && r.interactions.length === 1 && r.interactions[0] === 'delete');
  if (at < 0) throw new Error('the policy has no rule denying delete');
  return { ...policy, rules: rules.map((r, i) => (i === at ? { resources: ['*'], interactions: ['delete'], tier: 'write' } : r)) };
}

/** `policy` with each tier served by the upstream given for it (plain worker processes) instead of embedded workers. */
export function onUpstreams(policy: Json, upstreams: Record<string, string>): Json {
  const tiers = (policy.tiers as Json[]).map(({ workers: _workers, ...t }) => {
    if (!upstreams[t.name]) throw new Error(`no upstream for tier ${t.name}`);
    return { ...t, upstreams: [upstreams[t.name]] };
  });
  return { ...policy, tiers };
}
