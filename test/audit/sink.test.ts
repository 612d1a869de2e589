// The audit sink against a real FHIR-like server on loopback (node:http): batch Bundles and
// single POSTs, a server that is down and then up (every event delivered at least once, the
// cursor at the end of the trail), a restarted sink that resumes from its cursor, events the
// server refuses as invalid, a backlog over its limits, a line a crash cut short.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Registry } from 'prom-client';
import type { AuditEvent } from '../../src/audit/audit-event';
import { AuditSink, type AuditSinkOptions } from '../../src/audit/sink';
import { AuditTrail } from '../../src/audit/trail';
import { poll } from '../helpers/poll';
import { readRecord } from './records';
import { keptLog, metric, requestIdOf, trailDir, trailFiles } from './trail-helpers';

interface FhirServer {
  base: string;
  /** Every AuditEvent the server took, in arrival order. */
  taken: AuditEvent[];
  /** What each request was: `batch` or `single`. */
  requests: string[];
  /** `down`: 503 to everything. */
  state: 'up' | 'down';
  /** Request ids whose events it refuses with 422. */
  invalid: Set<string>;
  close(): Promise<void>;
}

const servers: FhirServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, json: unknown): void {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(json));
}

const INVALID_OUTCOME = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'AuditEvent.agent: not acceptable here' }] };

async function fhirServer(): Promise<FhirServer> {
  const s: FhirServer = { base: '', taken: [], requests: [], state: 'up', invalid: new Set(), close: async () => undefined };
  const verdict = (e: AuditEvent): { status: string; outcome?: unknown } => {
    if (s.invalid.has(requestIdOf(e) ?? '')) return { status: '422 Unprocessable Entity', outcome: INVALID_OUTCOME };
    s.taken.push(e);
    return { status: '201 Created' };
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const json = (await body(req)) as { resourceType: string; type?: string; entry?: { resource: AuditEvent; request: { method: string; url: string } }[] };
      if (s.state === 'down') return send(res, 503, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] });
      if (req.url === '/fhir' && json.resourceType === 'Bundle' && json.type === 'batch') {
        s.requests.push('batch');
        for (const e of json.entry ?? []) expect(e.request).toEqual({ method: 'POST', url: 'AuditEvent' });
        return send(res, 200, { resourceType: 'Bundle', type: 'batch-response', entry: (json.entry ?? []).map((e) => ({ response: verdict(e.resource) })) });
      }
      if (req.url === '/fhir/AuditEvent' && json.resourceType === 'AuditEvent') {
        s.requests.push('single');
        const v = verdict(json as unknown as AuditEvent);
        return send(res, Number.parseInt(v.status, 10), v.outcome ?? json);
      }
      send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  s.close = () => new Promise((resolve) => server.close(() => resolve()));
  servers.push(s);
  return s;
}

async function trailWith(n: number, o: { dir?: string; from?: number; maxFileBytes?: number } = {}): Promise<string> {
  const dir = o.dir ?? trailDir();
  const trail = new AuditTrail({ dir, registry: new Registry(), log: keptLog().log, maxFileBytes: o.maxFileBytes ?? 3000 });
  for (let i = o.from ?? 0; i < (o.from ?? 0) + n; i++) trail.record(readRecord({ requestId: `req-${i}` }));
  await trail.close();
  return dir;
}

function sink(dir: string, base: string, o: Partial<AuditSinkOptions> = {}) {
  const registry = new Registry();
  const { log, said } = keptLog();
  const s = new AuditSink({ dir, base, registry, log, retryInitialMs: 20, retryMaxMs: 100, pollIntervalMs: 20, timeoutMs: 5000, ...o });
  return { sink: s, registry, said };
}

function ids(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `req-${from + i}`);
}

/** The cursor at the end of the trail: the last file, its size. */
function endOf(dir: string): { file: string; offset: number } {
  const files = trailFiles(dir);
  const file = files[files.length - 1];
  return { file, offset: statSync(path.join(dir, file)).size };
}

function savedCursor(dir: string): unknown {
  return JSON.parse(readFileSync(path.join(dir, 'sink-cursor.json'), 'utf8'));
}

test('batch: every event of every file delivered in trail order, the cursor saved at the end', async () => {
  const server = await fhirServer();
  const dir = await trailWith(25);
  expect(trailFiles(dir).length).toBeGreaterThan(2);
  const { sink: s, registry } = sink(dir, server.base + '/', { batchSize: 10 });
  expect(await s.deliverPending()).toBe(25);
  expect(server.taken.map(requestIdOf)).toEqual(ids(25));
  expect(server.requests).toEqual(['batch', 'batch', 'batch']);
  expect(savedCursor(dir)).toEqual(endOf(dir));
  expect(await metric(registry, 'fhirguard_audit_sink_delivered_total')).toBe(25);
  expect(await metric(registry, 'fhirguard_audit_sink_pending_events')).toBe(0);
  expect(await metric(registry, 'fhirguard_audit_sink_pending_bytes')).toBe(0);
  expect(await metric(registry, 'fhirguard_audit_sink_up')).toBe(1);
  expect(await s.deliverPending()).toBe(0);
  expect(server.taken).toHaveLength(25);
});

test('each: one POST to <base>/AuditEvent per event', async () => {
  const server = await fhirServer();
  const dir = await trailWith(4);
  const { sink: s } = sink(dir, server.base, { mode: 'each' });
  expect(await s.deliverPending()).toBe(4);
  expect(server.requests).toEqual(['single', 'single', 'single', 'single']);
  expect(server.taken.map(requestIdOf)).toEqual(ids(4));
  expect(savedCursor(dir)).toEqual(endOf(dir));
});

test('a server down, then up: pending counted, retried with backoff, every event delivered at least once', async () => {
  const server = await fhirServer();
  server.state = 'down';
  const dir = await trailWith(6);
  const { sink: s, registry, said } = sink(dir, server.base, { batchSize: 4 });
  s.start();
  try {
    await poll('failed attempts', async () => (await metric(registry, 'fhirguard_audit_sink_failed_attempts_total', { reason: 'status' })) >= 3);
    expect(await metric(registry, 'fhirguard_audit_sink_up')).toBe(0);
    expect(await metric(registry, 'fhirguard_audit_sink_pending_events')).toBe(6);
    expect(said.some((x) => x.level === 'warn' && /^delivering AuditEvents to .* failed$/.test(x.msg))).toBe(true);
    await trailWith(3, { dir, from: 6 });
    await poll('the new events counted as pending', async () => (await metric(registry, 'fhirguard_audit_sink_pending_events')) === 9);
    server.state = 'up';
    await poll('every event delivered', () => ids(9).every((id) => server.taken.some((e) => requestIdOf(e) === id)));
    await poll('nothing pending', async () => (await metric(registry, 'fhirguard_audit_sink_pending_events')) === 0);
    expect(await metric(registry, 'fhirguard_audit_sink_up')).toBe(1);
    expect(s.cursor).toEqual(endOf(dir));
    expect(savedCursor(dir)).toEqual(endOf(dir));
    // New lines keep flowing while it runs.
    await trailWith(2, { dir, from: 9 });
    await poll('the later events delivered', () => server.taken.some((e) => requestIdOf(e) === 'req-10'));
  } finally {
    await s.stop();
  }
  expect(said.some((x) => x.level === 'info' && /works again$/.test(x.msg))).toBe(true);
});

test('a server not listening: a network failure, counted; the cursor stays', async () => {
  const server = await fhirServer();
  const base = server.base;
  await server.close();
  const dir = await trailWith(2);
  const { sink: s, registry } = sink(dir, base);
  await expect(s.deliverPending()).rejects.toMatchObject({ reason: 'network' });
  expect(await metric(registry, 'fhirguard_audit_sink_failed_attempts_total', { reason: 'network' })).toBe(1);
  expect(await metric(registry, 'fhirguard_audit_sink_pending_events')).toBe(2);
  expect(s.cursor).toEqual({ file: '', offset: 0 });
});

test('a restarted sink resumes at its saved cursor and sends nothing twice', async () => {
  const server = await fhirServer();
  const dir = await trailWith(5);
  expect(await sink(dir, server.base).sink.deliverPending()).toBe(5);
  await trailWith(3, { dir, from: 5 });
  const again = sink(dir, server.base);
  expect(await again.sink.deliverPending()).toBe(3);
  expect(server.taken.map(requestIdOf)).toEqual(ids(8));
});

test('an event the server refuses as invalid is counted and logged, not sent again, and does not hold up the rest', async () => {
  const server = await fhirServer();
  server.invalid.add('req-1');
  const dir = await trailWith(3);
  const { sink: s, registry, said } = sink(dir, server.base);
  expect(await s.deliverPending()).toBe(2);
  expect(server.taken.map(requestIdOf)).toEqual(['req-0', 'req-2']);
  expect(await metric(registry, 'fhirguard_audit_sink_rejected_total')).toBe(1);
  expect(said.find((x) => x.level === 'error')?.obj).toMatchObject({ status: 422, why: 'AuditEvent.agent: not acceptable here' });
  expect(savedCursor(dir)).toEqual(endOf(dir));
});

test('a backlog over the limits: a warning and a gauge, and the trail left whole', async () => {
  const server = await fhirServer();
  server.state = 'down';
  const dir = await trailWith(5);
  const sizes = trailFiles(dir).map((f) => statSync(path.join(dir, f)).size);
  const { sink: s, registry, said } = sink(dir, server.base, { maxPendingEvents: 3 });
  await expect(s.deliverPending()).rejects.toMatchObject({ reason: 'status' });
  expect(await metric(registry, 'fhirguard_audit_sink_backlog_over_limit')).toBe(1);
  expect(said.find((x) => x.level === 'warn' && /is behind/.test(x.msg))?.obj).toMatchObject({ pendingEvents: 5, maxPendingEvents: 3 });
  expect(trailFiles(dir).map((f) => statSync(path.join(dir, f)).size)).toEqual(sizes);
  server.state = 'up';
  await s.deliverPending();
  expect(await metric(registry, 'fhirguard_audit_sink_backlog_over_limit')).toBe(0);
});

test('a line a crash cut short in an older file is skipped; one being written in the newest is waited for', async () => {
  const server = await fhirServer();
  const dir = await trailWith(2, { maxFileBytes: 1 << 20 });
  const [first] = trailFiles(dir);
  writeFileSync(path.join(dir, first), '{"resourceType":"AuditEv', { flag: 'a' });
  await trailWith(1, { dir, from: 2 });
  const [, newest] = trailFiles(dir);
  writeFileSync(path.join(dir, newest), '{"resourceType":"Audit', { flag: 'a' });
  const { sink: s, registry } = sink(dir, server.base);
  expect(await s.deliverPending()).toBe(3);
  expect(server.taken.map(requestIdOf)).toEqual(ids(3));
  expect(await metric(registry, 'fhirguard_audit_sink_skipped_lines_total')).toBe(1);
  expect(s.cursor).toEqual({ file: newest, offset: statSync(path.join(dir, newest)).size - '{"resourceType":"Audit'.length });
  expect(await metric(registry, 'fhirguard_audit_sink_pending_events')).toBe(0);
});
