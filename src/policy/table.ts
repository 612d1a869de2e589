// The rules compiled into a lookup table: for every R4 resource type (and the system level)
// and every interaction kind, the first rule that matches, worked out once at load. A
// decision is then two Map lookups, whatever the number of rules.

import { INTERACTION_KINDS, type InteractionKind } from '../fhir/interaction';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import type { RuleFields } from './schema';

/** The resource-type key of interactions that have no type (system level). */
export const SYSTEM = '';

/** Kinds that only exist at the system level; `operation` exists at every level. */
export const SYSTEM_KINDS: ReadonlySet<InteractionKind> = new Set<InteractionKind>(['batch', 'transaction', 'history-system', 'search-system', 'capabilities']);

export interface Verdict {
  /** Index of the serving tier, or -1: refused. */
  readonly tier: number;
  /** Index of the deciding rule, or -1: no rule matched (default deny). */
  readonly rule: number;
}

export const NO_RULE: Verdict = Object.freeze({ tier: -1, rule: -1 });

/** One decided key, as listed by `entries()`. `operation` undefined with kind operation: any other operation. */
export interface Decided {
  type: string;
  kind: InteractionKind;
  operation?: string;
  verdict: Verdict;
}

interface Row {
  kinds: Map<InteractionKind, Verdict>;
  /** Operations some rule names explicitly. */
  ops: Map<string, Verdict>;
  /** Every other operation: only rules without an `operations` list can match it. */
  anyOp: Verdict;
}

interface CompiledRule {
  index: number;
  allTypes: boolean;
  types: ReadonlySet<string>;
  kinds: ReadonlySet<InteractionKind>;
  operations?: ReadonlySet<string>;
  verdict: Verdict;
}

export class DecisionTable {
  private readonly rows = new Map<string, Row>();

  /** `tierIndex` maps tier names to their rank; every rule's tier must be in it. */
  constructor(rules: readonly RuleFields[], tierIndex: ReadonlyMap<string, number>) {
    const compiled: CompiledRule[] = rules.map((r, index) => ({
      index,
      allTypes: r.resources.includes('*'),
      types: new Set(r.resources),
      kinds: new Set(r.interactions),
      ...(r.operations ? { operations: new Set(r.operations) } : {}),
      verdict: Object.freeze({ tier: r.deny ? -1 : (tierIndex.get(r.tier ?? '') ?? -1), rule: index }),
    }));
    const named = [...new Set(rules.flatMap((r) => r.operations ?? []))];

    for (const type of [SYSTEM, ...R4_RESOURCE_TYPES]) {
      const covering = compiled.filter((r) => r.allTypes || r.types.has(type));
      const first = (kind: InteractionKind, op?: string): Verdict =>
        covering.find((r) => r.kinds.has(kind) && (kind !== 'operation' || r.operations === undefined || (op !== undefined && r.operations.has(op))))?.verdict ?? NO_RULE;

      const kinds = new Map<InteractionKind, Verdict>();
      for (const kind of INTERACTION_KINDS) {
        if (kind === 'operation' || SYSTEM_KINDS.has(kind) === (type === SYSTEM)) kinds.set(kind, first(kind));
      }
      this.rows.set(type, {
        kinds,
        ops: new Map(named.map((op) => [op, first('operation', op)])),
        anyOp: first('operation'),
      });
    }
  }

  /** The verdict for `kind` on `type` (SYSTEM for the system level); `operation` for kind operation. */
  verdict(kind: InteractionKind, type: string, operation?: string): Verdict {
    const row = this.rows.get(type);
    if (row === undefined) return NO_RULE;
    if (kind === 'operation') return (operation !== undefined ? row.ops.get(operation) : undefined) ?? row.anyOp;
    return row.kinds.get(kind) ?? NO_RULE;
  }

  /** Every key of the table with its verdict (load-time derivations: read-only tiers, unused rules). */
  *entries(): Iterable<Decided> {
    for (const [type, row] of this.rows) {
      for (const [kind, verdict] of row.kinds) if (kind !== 'operation') yield { type, kind, verdict };
      for (const [operation, verdict] of row.ops) yield { type, kind: 'operation', operation, verdict };
      yield { type, kind: 'operation', verdict: row.anyOp };
    }
  }
}
