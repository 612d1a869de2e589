// The metric names fhirguard exports, read from its real prom-client registries (not a list
// kept by hand): whatever the code registers is what /metrics serves.

import { ProxyMetrics } from '../../src/metrics/registry';

export interface ExportedMetric {
  name: string;
  type: string;
}

export async function exportedMetrics(): Promise<Map<string, ExportedMetric>> {
  const proxy = new ProxyMetrics(['read', 'write', 'ops']);
  const out = new Map<string, ExportedMetric>();
  for (const m of await proxy.registry.getMetricsAsJSON()) out.set(m.name, { name: m.name, type: String(m.type) });
  return out;
}
