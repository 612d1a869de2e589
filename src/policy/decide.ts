// The per-request decision: one table lookup for the interaction itself, then the reach of a
// search checked against what the policy lets be read (precomputed per type and per tier),
// then, for batches and transactions, every entry.

import type { Interaction, InteractionKind } from '../fhir/interaction';
import { type FhirError, refuse } from '../fhir/outcome';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import { checkEntries } from './bundle-decision';
import { describeInteraction } from './describe';
import { ANY_TYPE } from './reference-graph';
import { type Reach, searches, searchReach } from './search-reach';
import { type DecisionTable, SYSTEM, SYSTEM_KINDS } from './table';
import type { TierConfig } from './types';

function denied(diagnostics: string): FhirError {
  return refuse(403, 'policy', 'forbidden', diagnostics);
}

function listed(types: readonly string[], max = 3): string {
  const shown = types.slice(0, max);
  const rest = types.length - shown.length;
  if (rest > 0) return `${shown.join(', ')} and ${rest} more`;
  return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}` : shown[0];
}

export class Decider {
  /**
   * What "the policy allows reading type T" means: the policy routes `search-type` of T to a
   * tier (not deny, not unmatched). A search serving at tier X may reach T only when T's
   * search tier ranks no higher than X, as for bundle entries.
   */
  private readonly searchTier = new Map<string, TierConfig | null>();
  /** Per tier rank: the types a search served there may not reach, as a list (for messages) and a set. */
  private readonly unreadableAt: string[][];
  private readonly unreadableSet: ReadonlySet<string>[];

  constructor(
    private readonly table: DecisionTable,
    private readonly tiers: readonly TierConfig[],
  ) {
    for (const t of R4_RESOURCE_TYPES) {
      const v = table.verdict('search-type', t);
      this.searchTier.set(t, v.tier >= 0 ? tiers[v.tier] : null);
    }
    this.unreadableAt = tiers.map((tier) =>
      R4_RESOURCE_TYPES.filter((t) => {
        const st = this.searchTier.get(t);
        return !st || st.rank > tier.rank;
      }),
    );
    this.unreadableSet = this.unreadableAt.map((list) => new Set(list));
  }

  readonly decide = (i: Interaction): TierConfig => {
    const tier = this.primary(i);
    if (i.kind === 'batch' || i.kind === 'transaction') checkEntries(i, tier, this.decide);
    // Where a tier may reach every type (the shipped policy), no reach can fail: skip computing it.
    else if (this.unreadableAt[tier.rank].length > 0 && searches(i)) for (const r of searchReach(i)) this.checkReach(r, tier, i);
    return tier;
  };

  /** The tier of the interaction's own rule. */
  private primary(i: Interaction): TierConfig {
    let kind: InteractionKind = i.kind;
    let type: string;
    if (SYSTEM_KINDS.has(kind) || (kind === 'operation' && i.level === 'system')) type = SYSTEM;
    else if (i.compartment && (i.resourceType === undefined || i.resourceType === '*')) {
      // `Patient/123/*` searches every member type: decided like a system search, and each
      // member type it reaches is then checked.
      kind = 'search-system';
      type = SYSTEM;
    } else type = i.resourceType ?? SYSTEM;

    const v = this.table.verdict(kind, type, i.operation);
    if (v.tier >= 0) return this.tiers[v.tier];
    throw denied(v.rule < 0 ? `no policy rule allows ${describeInteraction(i)}` : `${describeInteraction(i)} is denied by the policy (rules[${v.rule}])`);
  }

  private checkReach(r: Reach, tier: TierConfig, i: Interaction): void {
    if (r.types === ANY_TYPE) {
      const bad = this.unreadableAt[tier.rank];
      if (bad.length > 0) throw denied(`${r.via} can reach any resource type${r.why ? ` (${r.why})` : ''}, including ${this.why(bad, tier, i)}`);
      return;
    }
    const unreadable = this.unreadableSet[tier.rank];
    for (const t of r.types) {
      if (!unreadable.has(t)) continue;
      // Refusal path only: name every type of this reach that is not allowed.
      const bad = [...new Set(r.types)].filter((u) => unreadable.has(u));
      throw denied(`${r.via} reaches ${this.why(bad, tier, i, 10)}`);
    }
  }

  /** `A and B, which the policy does not allow reading` (denied types first), or the tier that may read them. */
  private why(bad: readonly string[], tier: TierConfig, i: Interaction, max = 3): string {
    const refused = bad.filter((t) => !this.searchTier.get(t));
    if (refused.length > 0) return `${listed(refused, max)}, which the policy does not allow reading`;
    const st = this.searchTier.get(bad[0]) as TierConfig;
    return `${listed(bad, max)}, which the policy lets only tier '${st.name}' read, more privileged than tier '${tier.name}' serving this ${i.kind}`;
  }
}
