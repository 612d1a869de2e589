// The Grafana dashboard as the tests see it: its panels, every PromQL expression with
// Grafana's own macros and variables replaced by values Prometheus accepts, and the metric
// names each expression reads.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const GRAFANA_DIR = join(REPO_ROOT, 'grafana');
export const DASHBOARD_FILE = join(GRAFANA_DIR, 'dashboards', 'fhirguard.json');

export type Panel = Record<string, any>;

export function loadDashboard(): Record<string, any> {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Record<string, any>): Panel[] {
  const out: Panel[] = [];
  for (const p of dashboard.panels ?? []) {
    out.push(p);
    for (const nested of p.panels ?? []) out.push(nested);
  }
  return out;
}

export interface DashboardQuery {
  panelId: number;
  panelTitle: string;
  refId: string;
  /** As written in the dashboard. */
  raw: string;
  /** As sent to Prometheus (macros and variables replaced). */
  promql: string;
  /** Grafana runs it as an instant query (bar gauges, tables) rather than over a range. */
  instant: boolean;
}

/**
 * Grafana's macros are not PromQL: Grafana replaces them before a query leaves the browser.
 * The values here are what Grafana would send for a short time range with every tier
 * selected ($tier = All = the variable's allValue).
 */
export const SUBSTITUTIONS: Record<string, string> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '5m',
  tier: '.*',
};

export function substitute(expr: string): string {
  const out = expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    const value = SUBSTITUTIONS[name];
    if (value === undefined) throw new Error(`no test value for Grafana variable ${whole} in: ${expr}`);
    return value;
  });
  return out;
}

export function dashboardQueries(dashboard: Record<string, any>): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  for (const p of allPanels(dashboard)) {
    for (const t of p.targets ?? []) {
      out.push({ panelId: p.id, panelTitle: p.title, refId: t.refId, raw: t.expr, promql: substitute(t.expr), instant: t.instant === true && t.range !== true });
    }
  }
  return out;
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. A small lexer is enough for the dashboard's
 * expressions: strings, label matchers, range durations and grouping clauses are dropped;
 * an identifier followed by "(" is a function or aggregation; what remains are metric names.
 */
export function metricNames(promql: string): string[] {
  const stripped = promql
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  const ident = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  let m: RegExpExecArray | null;
  while ((m = ident.exec(stripped)) !== null) {
    const word = m[0];
    const before = stripped[m.index - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // a number's exponent or suffix
    const rest = stripped.slice(m.index + word.length);
    if (/^\s*\(/.test(rest)) continue; // function or aggregation
    if (PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** The exported metric a series name belongs to (histograms expose _bucket, _sum, _count). */
export function baseMetric(series: string, histograms: ReadonlySet<string>): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  return m && histograms.has(m[1]) ? m[1] : series;
}
