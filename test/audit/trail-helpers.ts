// What the audit tests share: a log that keeps what it is told, a fresh trail directory, and
// the trail's files read back as events.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { AuditEvent } from '../../src/audit/audit-event';
import type { AuditLog } from '../../src/audit/log';

export interface Said {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export function keptLog(): { log: AuditLog; said: Said[] } {
  const said: Said[] = [];
  const keep = (level: Said['level']) => (obj: object, msg: string) => void said.push({ level, obj, msg });
  return { log: { info: keep('info'), warn: keep('warn'), error: keep('error') }, said };
}

const made: string[] = [];

/** A trail directory that does not exist yet, in a new temporary directory. */
export function trailDir(): string {
  const parent = mkdtempSync(path.join(tmpdir(), 'fg-audit-'));
  made.push(parent);
  return path.join(parent, 'trail');
}

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function trailFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^audit-.*\.jsonl$/.test(f))
    .sort();
}

/** Every line of every trail file, oldest file first, each parsed (a line that is not JSON throws). */
export function trailEvents(dir: string): AuditEvent[] {
  return trailFiles(dir).flatMap((f) => {
    const text = readFileSync(path.join(dir, f), 'utf8');
    expect(text === '' || text.endsWith('\n')).toBe(true);
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditEvent);
  });
}

export function requestIdOf(e: AuditEvent): string | undefined {
  return e.entity?.find((x) => x.type.code === 'XrequestId')?.what?.identifier?.value;
}

/** One metric's value from a registry, by name and labels. */
export async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const values = (await m.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => String((v.labels as Record<string, unknown>)[k]) === l));
  return values.reduce((n, v) => n + v.value, 0);
}

/** How many observations a histogram holds. */
export async function observations(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  return (await m.get()).values.filter((v) => (v as { metricName?: string }).metricName === `${name}_count`).reduce((n, v) => n + v.value, 0);
}
