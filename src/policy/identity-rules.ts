// Rules that match who asks (`clients`, `scopes`, `patient`, `certificates`), as decision tables. Which rules
// apply depends on the identity only through which of those rules' conditions it meets, so a
// decision table is built per such combination, the first time an identity meets it, and
// remembered with the identity: a request still decides with two Map lookups.

import { certificateMatches, type CertificateIdentity } from '../auth/client-certificate';
import { Decider } from './decide';
import { namesIdentity, type RuleFields } from './schema';
import { DecisionTable, type Decided } from './table';
import type { TierConfig } from './types';

/** What a rule can match on: the verified token's client, scopes and launch patient; the verified client certificate. */
export interface RuleSubject {
  clientId?: string;
  scopes: readonly string[];
  patient?: string;
  certificate?: CertificateIdentity;
}

/** A rule that matches no request: an identity rule whose conditions the identity does not meet. */
function never(r: RuleFields): RuleFields {
  return { ...r, interactions: [] };
}

function meets(r: RuleFields, who: RuleSubject | undefined): boolean {
  if (!who) return false;
  if (r.clients && (who.clientId === undefined || !r.clients.includes(who.clientId))) return false;
  if (r.scopes && !r.scopes.every((s) => who.scopes.includes(s))) return false;
  if (r.patient !== undefined && r.patient !== (who.patient !== undefined)) return false;
  if (r.certificates) {
    const cert = who.certificate;
    if (cert === undefined || !r.certificates.some((entry) => certificateMatches(entry, cert))) return false;
  }
  return true;
}

export class IdentityRules {
  /** Indexes of the rules that name an identity. */
  readonly indexes: readonly number[];
  private readonly tables = new Map<string, DecisionTable>();

  constructor(
    private readonly rules: readonly RuleFields[],
    private readonly tierIndex: ReadonlyMap<string, number>,
  ) {
    this.indexes = rules.flatMap((r, k) => (namesIdentity(r) ? [k] : []));
  }

  /** The key of the combination of identity rules `who` meets ('' with none). */
  keyOf(who: RuleSubject | undefined): string {
    let key = '';
    for (const k of this.indexes) key += meets(this.rules[k], who) ? '1' : '0';
    return key;
  }

  /** The decision table for a combination (keyOf). */
  table(key: string): DecisionTable {
    let t = this.tables.get(key);
    if (t === undefined) {
      const applying = new Set(this.indexes.filter((_, bit) => key[bit] === '1'));
      t = new DecisionTable(
        this.rules.map((r, k) => (namesIdentity(r) && !applying.has(k) ? never(r) : r)),
        this.tierIndex,
      );
      this.tables.set(key, t);
    }
    return t;
  }

  /**
   * The tables a load-time check looks at: no identity rule applying, and each identity rule
   * applying alone (the combination where it is most likely to decide something).
   */
  checkedKeys(): string[] {
    const none = '0'.repeat(this.indexes.length);
    return [none, ...this.indexes.map((_, bit) => `${none.slice(0, bit)}1${none.slice(bit + 1)}`)];
  }

  /** Every verdict of the checked tables. */
  *entries(): Iterable<Decided> {
    for (const key of this.checkedKeys()) yield* this.table(key).entries();
  }
}

/** The per-request decision with identity rules: a Decider per combination, remembered per identity. */
export class IdentityDecisions {
  private readonly deciders = new Map<string, Decider>();
  private readonly byIdentity = new WeakMap<RuleSubject, Decider>();

  constructor(
    private readonly rules: IdentityRules,
    private readonly tiers: readonly TierConfig[],
  ) {}

  readonly decide = (i: Parameters<Decider['decide']>[0], who?: RuleSubject): TierConfig => this.deciderFor(who).decide(i);

  private deciderFor(who: RuleSubject | undefined): Decider {
    const known = who && this.byIdentity.get(who);
    if (known) return known;
    const key = this.rules.keyOf(who);
    let d = this.deciders.get(key);
    if (d === undefined) {
      d = new Decider(this.rules.table(key), this.tiers);
      this.deciders.set(key, d);
    }
    if (who) this.byIdentity.set(who, d);
    return d;
  }
}
