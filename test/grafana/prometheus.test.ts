// Every PromQL expression of the Grafana dashboard, sent to a real Prometheus that scraped
// the real fhirguard system under a workload with refusals (and, when the whole system runs
// here, attacks on confined workers): each must parse and return data. An expression whose
// metrics fhirguard does not export yet fails here, by name; none is skipped.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dashboardQueries, loadDashboard, metricNames, GRAFANA_DIR } from './dashboard';
import { startPrometheus, waitFor, type PrometheusServer, type QueryResult } from './prometheus-server';
import { attack, canRunUp, startProxyAndWorkers, startUp, workloadRound, type AttackReport, type RunningSystem } from './system';

jest.setTimeout(600_000);

const queries = dashboardQueries(loadDashboard());
let dir: string;
let system: RunningSystem | undefined;
let prometheus: PrometheusServer | undefined;
const statuses: Array<{ what: string; status: number }> = [];
let attacks: AttackReport | undefined;
const results = new Map<string, QueryResult>();

/** What each attack must have left in the metrics Prometheus scraped (at any scrape). */
const ATTACK_EVIDENCE: Record<string, string> = {
  'read tier (enforce): a program started in a serving worker, killed': 'max(max_over_time(fhirguard_syscall_violations_total{tier="read", action="enforce"}[5m]))',
  'ops tier (audit): a program started in a serving worker, counted': 'max(max_over_time(fhirguard_syscall_violations_total{tier="ops", action="audit"}[5m]))',
  'ops tier (audit): its outbound connection, counted by the egress hook': 'max(max_over_time(fhirguard_egress_denied_total{tier="ops"}[5m]))',
  'write tier: the killed worker, restarted': 'max(max_over_time(fhirguard_worker_restarts_total{tier="write"}[5m]))',
};
const evidence = new Map<string, QueryResult>();

beforeAll(async () => {
  // Short (Unix socket paths) and traversable: under `up` the proxy runs as the workers' user.
  dir = mkdtempSync(join('/tmp', 'fg-prom-'));
  chmodSync(dir, 0o755);
  system = canRunUp() ? await startUp(dir) : await startProxyAndWorkers(dir);
  prometheus = await startPrometheus(join(dir, 'prometheus'), new URL(system.admin).host);
  const prom = prometheus;
  // Prometheus must see the target up before the workload, so rates have a start.
  await waitFor('Prometheus to scrape fhirguard', async () => ((await prom.query('up{job="fhirguard"} == 1')).data?.result.length ? true : undefined), 60_000, 250);
  // Traffic across several scrapes (bounded: 12 rounds), the attacks in the middle.
  for (let n = 0; n < 12; n++) {
    statuses.push(...(await workloadRound(system.base, n)));
    if (n === 5 && system.mode === 'up') attacks = await attack(system);
    await new Promise((r) => setTimeout(r, 250));
  }
  // Enough samples of the request counter for every rate() window: at least 5 scrapes
  // after traffic started, and the last scrape after the workload ended.
  const end = Date.now() / 1000;
  await waitFor(
    'Prometheus to hold the workload',
    async () => {
      const r = await prom.query('max(count_over_time(fhirguard_requests_total[1m])) >= 5 and max(timestamp(fhirguard_requests_total)) > ' + end.toFixed(3));
      return r.data?.result.length ? true : undefined;
    },
    120_000,
    500,
  );
  // Each target as Grafana sends it: time-series targets over the last minute, instant ones
  // at now. A series missing from one scrape (the proxy could not reach the agent in time)
  // is missing from an instant query until the next scrape: instant queries get a few.
  for (const q of queries) {
    let r = q.instant ? await prom.query(q.promql) : await prom.queryRange(q.promql, 60, 2);
    for (let retry = 0; q.instant && r.status === 'success' && r.data?.result.length === 0 && retry < 5; retry++) {
      await new Promise((res) => setTimeout(res, 1000));
      r = await prom.query(q.promql);
    }
    results.set(`${q.panelId}/${q.refId}`, r);
  }
  for (const [name, promql] of Object.entries(ATTACK_EVIDENCE)) evidence.set(name, await prom.query(promql));
});

afterAll(async () => {
  await prometheus?.stop();
  await system?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the workload', () => {
  it('went through every tier and was refused where fhirguard must refuse', () => {
    const by = (what: string) => statuses.filter((s) => s.what === what).map((s) => s.status);
    for (const ok of ['create', 'read', 'search', 'capabilities', 'update', 'history', 'transaction', '$validate']) {
      expect({ what: ok, statuses: [...new Set(by(ok))] }).toEqual({ what: ok, statuses: [expect.any(Number)] });
      expect(by(ok).every((s) => s >= 200 && s < 300)).toBe(true);
    }
    expect(new Set(by('refuse-delete'))).toEqual(new Set([403]));
    expect(new Set(by('refuse-type'))).toEqual(new Set([404]));
    expect(new Set(by('refuse-id'))).toEqual(new Set([400]));
    expect(new Set(by('refuse-json'))).toEqual(new Set([400]));
    expect(new Set(by('refuse-content-type'))).toEqual(new Set([415]));
  });

  it('ran the whole system with its agent, and attacked its confined workers', () => {
    // The enforcement panels need `fhirguard up` (agent, runc, eBPF) as root: without it
    // this fails, as do the expressions reading enforcement metrics below.
    expect({ mode: system?.mode, root: process.getuid?.() === 0 }).toEqual({ mode: 'up', root: true });
    expect(attacks?.steps.map((s) => s.what)).toHaveLength(4);
  });

  it.each(Object.keys(ATTACK_EVIDENCE))('left its mark in the metrics: %s', (name) => {
    const r = evidence.get(name);
    const value = Number(r?.data?.result[0]?.value?.[1] ?? 0);
    expect(value > 0 ? 'in the metrics' : `not in the metrics (${JSON.stringify(r)}); the attacks: ${JSON.stringify(attacks?.steps)}`).toBe('in the metrics');
  });
});

describe('the shipped Prometheus configuration', () => {
  it('passes promtool', () => {
    const r = spawnSync('promtool', ['check', 'config', join(GRAFANA_DIR, 'prometheus.yml')], { encoding: 'utf8' });
    expect({ status: r.status, out: r.status === 0 ? '' : r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
  });
});

describe.each(queries.map((q) => [`${q.panelTitle} [${q.refId}]`, q] as const))('dashboard expression: %s', (_name, q) => {
  it('parses in Prometheus', () => {
    const r = results.get(`${q.panelId}/${q.refId}`);
    expect({ expr: q.promql, status: r?.status, error: r?.error }).toEqual({ expr: q.promql, status: 'success', error: undefined });
  });

  it('returns data', () => {
    const r = results.get(`${q.panelId}/${q.refId}`);
    // On failure: the metrics this expression reads are not exported (or not yet scraped).
    expect({ expr: q.promql, metrics: metricNames(q.promql), hasData: (r?.data?.result.length ?? 0) > 0 }).toEqual({ expr: q.promql, metrics: metricNames(q.promql), hasData: true });
  });
});
