// Hot-path metric cells. prom-client's own Counter and Histogram re-validate and re-hash their
// label set on every observation, even through `.labels()`, and a proxied request makes
// seven observations. These cells are bound to one label
// set once, so an observation is a bucket search and two additions; they are exposed through
// a prom-client Registry (which formats the text exposition), next to prom-client's own
// metrics.

import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

export class CounterCell {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class HistogramCell {
  /** Non-cumulative counts; the last slot is the +Inf bucket. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }
}

/** Cells keyed by their label values, one Map level per label (the last level holds cells). */
type CellTree<C> = Map<string, CellTree<C> | C>;

abstract class LeanMetric<C extends { labels: Labels }> {
  private readonly tree: CellTree<C> = new Map();
  private readonly cells: C[] = [];
  /** Index of the last label: the tree's depth above its cells. */
  private readonly last: number;
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    this.last = Math.max(0, labelNames.length - 1);
    registry.registerMetric(this as never);
  }

  protected abstract make(labels: Labels): C;

  /**
   * The cell of one label set (values in labelNames order). A lookup per label value in
   * nested Maps: label values are the policy's and the R4 tables' strings, whose hashes are
   * cached, where a joined key was a new string to build and hash on every request.
   */
  cell(...values: string[]): C {
    let node = this.tree;
    const last = this.last;
    for (let i = 0; i < last; i++) {
      const v = values[i] ?? '';
      let next = node.get(v) as CellTree<C> | undefined;
      if (!next) node.set(v, (next = new Map()));
      node = next;
    }
    const v = values[last] ?? '';
    let c = node.get(v) as C | undefined;
    if (!c) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      c = this.make(labels);
      node.set(v, c);
      this.cells.push(c);
    }
    return c;
  }

  protected allCells(): Iterable<C> {
    return this.cells;
  }

  /** prom-client's metric interface: what the Registry formats on a scrape. */
  abstract get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string };

  reset(): void {
    this.tree.clear();
    this.cells.length = 0;
  }
}

export class LeanCounter extends LeanMetric<CounterCell> {
  readonly type = 'counter';
  protected make(labels: Labels): CounterCell {
    return new CounterCell(labels);
  }
  get() {
    const values: MetricValue[] = [];
    for (const c of this.allCells()) values.push({ labels: c.labels, value: c.value });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class LeanHistogram extends LeanMetric<HistogramCell> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    registry: Registry,
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames, registry);
  }
  protected make(labels: Labels): HistogramCell {
    return new HistogramCell(labels, this.buckets);
  }
  get() {
    const values: MetricValue[] = [];
    for (const c of this.allCells()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += c.counts[i];
        const le = i < this.buckets.length ? String(this.buckets[i]) : '+Inf';
        values.push({ labels: { ...c.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
