// Reading the Prometheus text exposition the admin listener serves, so tests can look up
// one series by name and labels and compare its value.

import { poll } from './poll';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one series with exactly these labels (subset match), 0 when absent. */
export function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${hits.length} series`);
  return hits[0]?.value ?? 0;
}

/** Sum over every series of `name` whose labels include `labels`. */
export function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

export async function scrape(adminUrl: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return { text, samples: parseMetrics(text) };
}

/** Scrapes until `ready(samples)` holds (metrics are recorded when a response has finished). */
export async function scrapeUntil(adminUrl: string, ready: (s: Sample[]) => boolean, timeoutMs = 10_000): Promise<{ text: string; samples: Sample[] }> {
  let got = await scrape(adminUrl);
  // At the deadline the last scrape is returned: the caller's assertions say what is missing.
  return poll(
    'the metrics to be recorded',
    async () => {
      got = await scrape(adminUrl);
      return ready(got.samples) ? got : false;
    },
    { timeoutMs },
  ).catch(() => got);
}
