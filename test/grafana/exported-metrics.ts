// The metric names fhirguard exports, read from its real prom-client registry (not a list
// kept by hand): the proxy's request metrics and the enforcement metrics it reads from the
// agent, registered the way `fhirguard proxy` registers them. No agent runs here: the
// enforcement metrics then have no values, but their names and types are registered.

import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { AgentClient } from '../../src/agent-api/client';
import { registerEnforcementMetrics } from '../../src/metrics/enforcement';
import { ProxyMetrics } from '../../src/metrics/registry';

export interface ExportedMetric {
  name: string;
  type: string;
}

export async function exportedMetrics(): Promise<Map<string, ExportedMetric>> {
  const tiers = ['read', 'write', 'ops'];
  const proxy = new ProxyMetrics(tiers);
  const dir = mkdtempSync(join(tmpdir(), 'fg-metrics-'));
  try {
    registerEnforcementMetrics(proxy.registry, new AgentClient(join(dir, 'no-agent.sock'), 1000), tiers, () => undefined);
    const out = new Map<string, ExportedMetric>();
    for (const m of await proxy.registry.getMetricsAsJSON()) out.set(m.name, { name: m.name, type: String(m.type) });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
