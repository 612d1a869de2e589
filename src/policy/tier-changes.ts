// What a new policy changes in the tiers, beside the rules: the things a running front door
// cannot take by swapping its decisions, because pools, workers, their confinement or the
// front door's own egress were made from them. A reload refuses a policy that changes any of
// them and names each change; the rest (rules, identity rules, validation, token checks) is
// put in force at once.

import type { Policy, TierConfig } from './types';

const TIER_FIELDS = ['upstreams', 'tls', 'workers', 'server', 'timeoutMs', 'mode', 'enforcement', 'readOnly', 'rank'] as const satisfies readonly (keyof TierConfig)[];

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A field's value as a message shows it: upstream TLS by its files, never the PEM it read (a private key). */
function shown(field: (typeof TIER_FIELDS)[number], t: TierConfig): string {
  return JSON.stringify(field === 'tls' ? t.tls?.files : t[field]);
}

/** Each change in the tiers from `before` to `after`, as a sentence; none: the tiers are the same. */
export function tierChanges(before: Policy, after: Policy): string[] {
  const changes: string[] = [];
  for (const t of after.tiers) if (!before.tierByName.has(t.name)) changes.push(`tier '${t.name}' is new`);
  for (const t of before.tiers) {
    const next = after.tierByName.get(t.name);
    if (!next) {
      changes.push(`tier '${t.name}' is gone`);
      continue;
    }
    for (const f of TIER_FIELDS) if (!same(t[f], next[f])) changes.push(`tier '${t.name}': ${f} changes from ${shown(f, t)} to ${shown(f, next)}`);
  }
  return changes;
}

/** Where the front door connects for tokens: under `up` its eBPF egress was made from these. */
export function issuerChanges(before: Policy, after: Policy): string[] {
  const a = before.authorization;
  const b = after.authorization;
  const at = (p: typeof a) => ({ issuer: p?.issuer, jwksUri: p?.jwksUri, introspection: p?.introspection?.endpoint });
  return same(at(a), at(b)) ? [] : [`the token issuer's endpoints change from ${JSON.stringify(at(a))} to ${JSON.stringify(at(b))}`];
}
