// The Grafana dashboard and its provisioning, checked as files: Grafana loads them as they
// are (no import step), so every panel must reference the datasource variable, ids must be
// unique, and every expression must read metrics fhirguard really exports.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { allPanels, baseMetric, dashboardQueries, GRAFANA_DIR, loadDashboard, metricNames, REPO_ROOT, substitute } from './dashboard';
import { exportedMetrics } from './exported-metrics';

const DS_VARIABLE = '${datasource}';

/** What the issue asks the dashboard to show, as the metric each view needs. */
const REQUIRED_METRICS = [
  'fhirguard_requests_total', // request rate by tier and outcome
  'fhirguard_refusals_total', // refusals by reason
  'fhirguard_request_duration_seconds', // total latency by tier and interaction
  'fhirguard_upstream_duration_seconds', // upstream latency
  'fhirguard_stage_duration_seconds', // time per stage and proxy overhead
  'fhirguard_syscall_violations_total', // violations by tier and syscall
  'fhirguard_egress_denied_total', // egress denials
  'fhirguard_workers', // workers by state
  'fhirguard_worker_restarts_total', // restarts
  'fhirguard_enforcement_active', // enforcement per tier and mechanism
  'fhirguard_profile_allowed_syscalls', // allowed syscalls per tier ...
  'fhirguard_docker_default_allowed_syscalls', // ... against Docker's default
];

const dashboard = loadDashboard();
const panels = allPanels(dashboard);
const dataPanels = panels.filter((p) => p.type !== 'row');
const queries = dashboardQueries(dashboard);

describe('dashboard structure', () => {
  it('is a provisionable dashboard: uid, title, no fixed id, a current schemaVersion', () => {
    expect(typeof dashboard.uid).toBe('string');
    expect(dashboard.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(dashboard.title).toBe('fhirguard');
    expect(dashboard.id ?? null).toBeNull();
    // Grafana 11 writes 39-40, Grafana 12 writes 41 and later.
    expect(Number.isInteger(dashboard.schemaVersion)).toBe(true);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  });

  it('gives every panel a unique id', () => {
    const ids = panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('declares a Prometheus datasource variable, and every panel and target uses it', () => {
    const vars = dashboard.templating.list as Array<Record<string, unknown>>;
    const ds = vars.find((v) => v.name === 'datasource');
    expect(ds).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const p of dataPanels) {
      expect({ panel: p.title, datasource: p.datasource }).toEqual({ panel: p.title, datasource: { type: 'prometheus', uid: DS_VARIABLE } });
      for (const t of p.targets) expect({ panel: p.title, datasource: t.datasource }).toEqual({ panel: p.title, datasource: { type: 'prometheus', uid: DS_VARIABLE } });
    }
    for (const v of vars.filter((v) => v.type === 'query')) expect(v.datasource).toEqual({ type: 'prometheus', uid: DS_VARIABLE });
  });

  it('gives every data panel targets with an expression and unique refIds', () => {
    for (const p of dataPanels) {
      expect({ panel: p.title, targets: Array.isArray(p.targets) && p.targets.length > 0 }).toEqual({ panel: p.title, targets: true });
      const refIds = p.targets.map((t: { refId: string }) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      for (const t of p.targets) expect({ panel: p.title, expr: typeof t.expr === 'string' && t.expr.trim().length > 0 }).toEqual({ panel: p.title, expr: true });
    }
    for (const p of panels.filter((p) => p.type === 'row')) expect(p.targets).toBeUndefined();
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const owner = new Map<string, string>();
    const problems: string[] = [];
    for (const p of panels) {
      const g = p.gridPos;
      if (g.x < 0 || g.w < 1 || g.h < 1 || g.x + g.w > 24) problems.push(`${p.title}: outside the grid`);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const other = owner.get(`${x},${y}`);
          if (other !== undefined && !problems.includes(`${p.title} overlaps ${other}`)) problems.push(`${p.title} overlaps ${other}`);
          owner.set(`${x},${y}`, p.title);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('replaces every Grafana macro and variable before a query reaches Prometheus', () => {
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) expect(q.promql).not.toContain('$');
    expect(substitute('rate(x[$__rate_interval]) + rate(x[${__range}])')).toBe('rate(x[1m]) + rate(x[5m])');
    expect(() => substitute('rate(x[$unknown])')).toThrow(/no test value/);
  });

  it('computes percentiles from histogram buckets summed by le', () => {
    for (const q of queries.filter((q) => q.raw.includes('histogram_quantile'))) {
      expect(q.raw).toMatch(/histogram_quantile\(0\.\d+, sum by \(le(, \w+)*\) \(rate\(fhirguard_\w+_seconds_bucket(\{[^}]*\})?\[\$__rate_interval\]\)\)\)/);
    }
  });
});

describe('dashboard metrics', () => {
  it('reads metric names the way PromQL names them', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le, tier) (rate(a_bucket{tier=~"x"}[1m])))')).toEqual(['a_bucket']);
    expect(metricNames('sum(rate(a_total[1m])) / sum without (x) (b) - 1e3 * scalar(max(c{l="d_e"}))')).toEqual(['a_total', 'b', 'c']);
  });

  it('shows every view the issue asks for', () => {
    const used = new Set(queries.flatMap((q) => metricNames(q.promql).map((n) => n.replace(/_(bucket|sum|count)$/, ''))));
    expect(REQUIRED_METRICS.filter((m) => !used.has(m))).toEqual([]);
  });

  it('reads only metrics that fhirguard exports', async () => {
    const exported = await exportedMetrics();
    const histograms = new Set([...exported.values()].filter((m) => m.type === 'histogram').map((m) => m.name));
    const missing = new Set<string>();
    for (const q of queries) {
      for (const series of metricNames(q.promql)) {
        const name = baseMetric(series, histograms);
        if (!exported.has(name)) missing.add(name);
        // _bucket/_sum/_count only exist on histograms.
        if (name === series && /_(bucket)$/.test(series)) missing.add(series);
      }
    }
    expect([...missing].sort()).toEqual([]);
  });
});

describe('provisioning', () => {
  const dsProvisioning = parseYaml(readFileSync(join(GRAFANA_DIR, 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8'));
  const dashProvisioning = parseYaml(readFileSync(join(GRAFANA_DIR, 'provisioning', 'dashboards', 'fhirguard.yaml'), 'utf8'));

  it('provisions a default Prometheus data source', () => {
    expect(dsProvisioning.apiVersion).toBe(1);
    const prom = dsProvisioning.datasources.filter((d: Record<string, unknown>) => d.type === 'prometheus');
    expect(prom).toHaveLength(1);
    expect(prom[0]).toMatchObject({ access: 'proxy', isDefault: true });
    expect(new URL(prom[0].url).port).toBe('9090');
  });

  it('provisions the dashboard folder from files, at the path compose mounts grafana/dashboards on', () => {
    expect(dashProvisioning.apiVersion).toBe(1);
    expect(dashProvisioning.providers).toHaveLength(1);
    const provider = dashProvisioning.providers[0];
    expect(provider).toMatchObject({ type: 'file', name: 'fhirguard' });
    const compose = parseYaml(readFileSync(join(REPO_ROOT, 'deploy', 'compose.yaml'), 'utf8'));
    const mounts: string[] = compose.services.grafana.volumes.map((v: string | { source: string; target: string }) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    const dashboardsMount = mounts.find((m) => m.split(':')[0].replace(/\/$/, '') === '../grafana/dashboards');
    expect(dashboardsMount?.split(':')[1]).toBe(provider.options.path);
    const provisioningMount = mounts.find((m) => m.split(':')[0].replace(/\/$/, '') === '../grafana/provisioning');
    expect(provisioningMount?.split(':')[1]).toBe('/etc/grafana/provisioning');
  });
});
