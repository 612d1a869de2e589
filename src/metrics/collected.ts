// A metric whose values are read from elsewhere at scrape time (the agent's counters),
// exposed with its true type: prom-client's Counter cannot be set to a total someone else
// keeps, and a Gauge would tell Prometheus the value may go down.

import type { Registry } from 'prom-client';

interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface CollectedSpec {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values(): Promise<Sample[]>;
}

export function collected(registry: Registry, spec: CollectedSpec): void {
  registry.registerMetric({
    name: spec.name,
    help: spec.help,
    type: spec.type,
    aggregator: 'sum',
    async get() {
      return { name: spec.name, help: spec.help, type: spec.type, aggregator: 'sum', values: await spec.values() };
    },
    reset() {},
  } as never);
}
