// docs/audit.md lists every metric the trail, the sink and the proxy's handover to the agent
// register, and nothing else, so a renamed or new metric breaks a test here instead of an
// operator's dashboard.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import pino from 'pino';
import { AgentClient } from '../../src/agent-api/client';
import { SinkMetrics } from '../../src/audit/sink-metrics';
import { TrailMetrics } from '../../src/audit/trail-metrics';
import { AgentAudit } from '../../src/proxy/agent-audit';

test('docs/audit.md names exactly the metrics of the trail, the sink and the handover to the agent', async () => {
  const registry = new Registry();
  new TrailMetrics(registry);
  new SinkMetrics(registry);
  new AgentAudit(new AgentClient('/nonexistent.sock'), pino({ level: 'silent' }), registry);
  const registered = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
  const doc = readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'audit.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Metrics'));
  const documented = [...new Set([...section.matchAll(/`(fhirguard_audit_[a-z_]+)`/g)].map((m) => m[1]))].sort();
  expect(documented).toEqual(registered);
});
