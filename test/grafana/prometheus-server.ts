// A real Prometheus (Debian's /usr/bin/prometheus) for tests: loopback port, temporary
// storage, a configuration made from the shipped grafana/prometheus.yml with the test's
// target and a 1 s scrape interval. Queried over its HTTP API.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { GRAFANA_DIR } from './dashboard';
import { poll } from '../helpers/poll';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 200): Promise<T> {
  return poll(what, probe, { timeoutMs, intervalMs });
}

export interface QueryResult {
  status: 'success' | 'error';
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value?: [number, string]; values?: Array<[number, string]> }> };
}

export interface PrometheusServer {
  url: string;
  /** An instant query at now (what Grafana sends for an instant target). */
  query(promql: string): Promise<QueryResult>;
  /** A range query over the last `seconds` (what Grafana sends for a time-series target). */
  queryRange(promql: string, seconds: number, stepSeconds: number): Promise<QueryResult>;
  log(): string;
  stop(): Promise<void>;
}

/** The shipped scrape config, pointed at `target` and scraping every second. */
export function scrapeConfig(target: string): string {
  const shipped = parseYaml(readFileSync(join(GRAFANA_DIR, 'prometheus.yml'), 'utf8'));
  shipped.global.scrape_interval = '1s';
  shipped.global.evaluation_interval = '1s';
  for (const job of shipped.scrape_configs) for (const sc of job.static_configs) sc.targets = [target];
  return stringify(shipped);
}

export async function startPrometheus(dir: string, target: string): Promise<PrometheusServer> {
  if (!existsSync(PROMETHEUS_BIN)) throw new Error(`${PROMETHEUS_BIN} is missing: install the Debian package prometheus (scripts/apt-packages.txt)`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, scrapeConfig(target));
  const storage = join(dir, 'tsdb');
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(PROMETHEUS_BIN, [`--config.file=${config}`, `--storage.tsdb.path=${storage}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr?.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    'Prometheus to be ready',
    async () => {
      if (gone) throw new Error(`prometheus exited: ${log}`);
      const r = await fetch(`${url}/-/ready`);
      return r.ok ? true : undefined;
    },
    60_000,
  );
  return {
    url,
    log: () => log,
    async query(promql) {
      const r = await fetch(`${url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ query: promql }) });
      return (await r.json()) as QueryResult;
    },
    async queryRange(promql, seconds, stepSeconds) {
      const end = Date.now() / 1000;
      const body = new URLSearchParams({ query: promql, start: (end - seconds).toFixed(3), end: end.toFixed(3), step: String(stepSeconds) });
      const r = await fetch(`${url}/api/v1/query_range`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      return (await r.json()) as QueryResult;
    },
    async stop() {
      if (!gone) proc.kill('SIGTERM');
      await exited;
    },
  };
}
