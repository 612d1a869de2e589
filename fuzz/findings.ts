// Totals per class and per oracle, and the first few examples of each violated oracle with
// what it takes to rebuild the case (seed and index).

import type { FuzzCase } from './generate/case';

export const ORACLES = [
  'proxy-alive',
  'no-500',
  'no-gateway-error',
  'refusal-is-outcome',
  'answered',
  'connection-bounded',
  'forwarded-answered',
  'upstream-denied',
  'upstream-override',
  'upstream-expect',
  'upstream-framing',
  'upstream-body',
  'tier-serves',
] as const;

export interface Example {
  seed: number;
  index: number | null;
  klass: string;
  detail: string;
  request?: string;
}

export interface ClassTotals {
  cases: number;
  statuses: Record<string, number>;
}

export class Findings {
  readonly classes = new Map<string, ClassTotals>();
  readonly violations = new Map<string, { count: number; byClass: Record<string, number>; examples: Example[] }>(ORACLES.map((o) => [o, { count: 0, byClass: {}, examples: [] }]));

  constructor(
    readonly seed: number,
    private readonly examplesPerOracle = 5,
  ) {}

  countCase(klass: string, status: string): void {
    const t = this.classes.get(klass) ?? { cases: 0, statuses: {} };
    t.cases++;
    t.statuses[status] = (t.statuses[status] ?? 0) + 1;
    this.classes.set(klass, t);
  }

  violate(oracle: string, index: number | null, klass: string, detail: string, c?: FuzzCase): void {
    const v = this.violations.get(oracle) ?? { count: 0, byClass: {}, examples: [] };
    v.count++;
    v.byClass[klass] = (v.byClass[klass] ?? 0) + 1;
    if (v.examples.length < this.examplesPerOracle) v.examples.push({ seed: this.seed, index, klass, detail, request: c ? describeCase(c) : undefined });
    this.violations.set(oracle, v);
  }

  total(): number {
    let n = 0;
    for (const v of this.violations.values()) n += v.count;
    return n;
  }

  /** e.g. "no-500=3 upstream-denied=1" (only the violated ones). */
  brief(): string {
    return (
      [...this.violations]
        .filter(([, v]) => v.count > 0)
        .map(([o, v]) => `${o}=${v.count}`)
        .join(' ') || 'none'
    );
  }
}

/** A request as text for a findings file: head in full, body cut at 600 bytes. */
export function describeCase(c: FuzzCase): string {
  const cut = (b: Buffer) => {
    const s = b.subarray(0, 600).toString('latin1');
    return b.length > 600 ? `${s}… (${b.length} bytes)` : s;
  };
  if (c.kind === 'raw') return c.writes.map((w, i) => `[write ${i}] ${cut(w)}`).join('\n');
  const head = [
    `${c.method} ${c.target.length > 600 ? `${c.target.slice(0, 600)}…` : c.target}`,
    ...c.headers.map(([n, v]) => `${n}: ${v.length > 200 ? `${v.slice(0, 200)}… (${v.length} chars)` : v}`),
  ];
  return head.join('\n') + (c.body ? `\n\n${cut(c.body)}` : '');
}
