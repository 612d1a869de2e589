// fhirguard_build_info: which fhirguard and which Node a process runs, as the constant-1
// gauge Prometheus convention uses for build facts, so a dashboard or an alert can join
// any series on the version (a rollout shows as two versions side by side).

import { Gauge, type Registry } from 'prom-client';
import { fhirguardVersion } from '../version';

/** The processes that serve a /metrics: the proxy and the node agent. */
export type Component = 'proxy' | 'agent';

export function registerBuildInfo(registry: Registry, component: Component): void {
  const info = new Gauge({
    name: 'fhirguard_build_info',
    help: 'fhirguard version, Node.js version and component of this process; always 1',
    labelNames: ['version', 'node', 'component'],
    registers: [registry],
    // The processes of one front door run one build: aggregated, it is said once.
    aggregator: 'first',
  });
  info.set({ version: fhirguardVersion(), node: process.version, component }, 1);
}
