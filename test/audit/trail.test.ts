// The audit trail on a real file system: group commit (every recorded line in a file, in
// order, after flush or close), rotation by size and at UTC midnight, files never rewritten,
// and a failing disk (a directory gone, a descriptor closed underneath): counted, logged,
// retried, and never a crash.

import { closeSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { auditEvent } from '../../src/audit/audit-event';
import { AuditTrail, AuditTrailError, type AuditTrailOptions } from '../../src/audit/trail';
import { poll } from '../helpers/poll';
import { readRecord } from './records';
import { keptLog, metric, observations, requestIdOf, trailDir, trailEvents, trailFiles } from './trail-helpers';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
afterEach(() => expect(unhandled).toEqual([]));

function open(o: Partial<AuditTrailOptions> = {}) {
  const registry = new Registry();
  const { log, said } = keptLog();
  const dir = o.dir ?? trailDir();
  const trail = new AuditTrail({ dir, registry, log, ...o });
  return { trail, registry, said, dir };
}

function recordMany(trail: AuditTrail, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) trail.record(readRecord({ requestId: `req-${i}` }));
}

/** The size of one line as recordMany makes them, give or take the digits of the request id. */
function lineBytes(): number {
  return Buffer.byteLength(JSON.stringify(auditEvent(readRecord({ requestId: 'req-0' }))) + '\n');
}

function ids(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `req-${from + i}`);
}

test('group commit: after flush every recorded event is in the file, in order, one JSON line each, synced once', async () => {
  const { trail, registry, dir } = open();
  recordMany(trail, 50);
  expect(trailEvents(dir).length).toBeLessThan(50);
  await trail.flush();
  expect(trailEvents(dir).map(requestIdOf)).toEqual(ids(50));
  expect(await metric(registry, 'fhirguard_audit_events_written_total')).toBe(50);
  expect(await observations(registry, 'fhirguard_audit_fsync_duration_seconds')).toBe(1);
  const [file] = trailFiles(dir);
  expect(await metric(registry, 'fhirguard_audit_bytes_written_total')).toBe(statSync(path.join(dir, file)).size);
  expect(await metric(registry, 'fhirguard_audit_file_info', { file })).toBe(1);
  expect(await metric(registry, 'fhirguard_audit_events_buffered')).toBe(0);
  expect(trail.currentFile).toBe(file);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(statSync(path.join(dir, file)).mode & 0o777).toBe(0o600);
  await trail.close();
});

test('without a flush, a recorded event reaches the file within the commit interval', async () => {
  const { trail, dir } = open({ commitIntervalMs: 5 });
  recordMany(trail, 3);
  await poll('three lines in the trail', () => trailEvents(dir).length === 3);
  await trail.close();
});

test('a large batch is committed at once, before the interval', async () => {
  const { trail, dir } = open({ commitIntervalMs: 60_000, commitBytes: 4096 });
  recordMany(trail, 20);
  await poll('the batch committed', () => trailEvents(dir).length === 20);
  await trail.close();
});

test('close flushes and closes; a record after it is dropped, counted and logged', async () => {
  const { trail, registry, said, dir } = open({ commitIntervalMs: 60_000 });
  recordMany(trail, 4);
  await trail.close();
  expect(trailEvents(dir).map(requestIdOf)).toEqual(ids(4));
  trail.record(readRecord());
  expect(await metric(registry, 'fhirguard_audit_events_dropped_total', { reason: 'closed' })).toBe(1);
  expect(said.find((s) => s.level === 'error')).toMatchObject({ msg: 'keeping every AuditEvent failed', obj: { err: expect.stringMatching(/after the audit trail was closed/) } });
  expect(trailEvents(dir)).toHaveLength(4);
});

test('rotation at a size: no file grows past it, the lines stay in order across files', async () => {
  const line = lineBytes();
  const { trail, registry, dir } = open({ maxFileBytes: line * 3 + 10 });
  recordMany(trail, 10);
  await trail.flush();
  recordMany(trail, 5, 10);
  await trail.close();
  const files = trailFiles(dir);
  expect(files).toHaveLength(5);
  for (const f of files) expect(statSync(path.join(dir, f)).size).toBeLessThanOrEqual(line * 3 + 10);
  expect(trailEvents(dir).map(requestIdOf)).toEqual(ids(15));
  expect(await metric(registry, 'fhirguard_audit_rotations_total', { reason: 'size' })).toBe(4);
});

test('a line larger than the size limit gets a file of its own', async () => {
  const { trail, dir } = open({ maxFileBytes: 100 });
  recordMany(trail, 3);
  await trail.close();
  expect(trailFiles(dir)).toHaveLength(3);
  expect(trailEvents(dir).map(requestIdOf)).toEqual(ids(3));
});

test('rotation at UTC midnight: the lines of a new day start a new file', async () => {
  let clock = Date.parse('2026-12-05T23:59:59.990Z');
  const { trail, registry, dir } = open({ now: () => clock, commitIntervalMs: 60_000 });
  recordMany(trail, 3);
  clock = Date.parse('2026-12-06T00:00:00.004Z');
  recordMany(trail, 2, 3);
  await trail.flush();
  clock = Date.parse('2026-12-06T08:00:00.000Z');
  recordMany(trail, 1, 5);
  await trail.close();
  const files = trailFiles(dir);
  expect(files).toEqual(['audit-20261205T235959.990Z.jsonl', 'audit-20261206T000000.004Z.jsonl']);
  const lines = files.map((f) => readFileSync(path.join(dir, f), 'utf8').trim().split('\n').length);
  expect(lines).toEqual([3, 3]);
  expect(await metric(registry, 'fhirguard_audit_rotations_total', { reason: 'day' })).toBe(1);
});

test('a file is never appended to by a later trail, and names keep their order when the clock steps back', async () => {
  let clock = Date.parse('2026-12-05T12:00:00.000Z');
  const first = open({ now: () => clock });
  recordMany(first.trail, 2);
  await first.trail.close();
  const [old] = trailFiles(first.dir);
  const before = readFileSync(path.join(first.dir, old));
  clock = Date.parse('2026-12-05T11:00:00.000Z');
  const second = open({ dir: first.dir, now: () => clock });
  recordMany(second.trail, 2, 2);
  await second.trail.close();
  const files = trailFiles(first.dir);
  expect(files).toEqual([old, 'audit-20261205T120000.001Z.jsonl']);
  expect(readFileSync(path.join(first.dir, old))).toEqual(before);
  expect(trailEvents(first.dir).map(requestIdOf)).toEqual(ids(4));
});

test('a directory gone: each attempt counted and logged, events kept and retried, written once it is back', async () => {
  const { trail, registry, said, dir } = open({ commitIntervalMs: 5 });
  rmSync(dir, { recursive: true });
  writeFileSync(dir, 'not a directory');
  recordMany(trail, 5);
  const err = await trail.flush().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuditTrailError);
  expect(err).toMatchObject({ stage: 'open', unwritten: 5 });
  // The retries go on by themselves, without a caller and without a crash.
  await poll('a retried attempt', async () => (await metric(registry, 'fhirguard_audit_write_failures_total', { stage: 'open' })) >= 2);
  expect(said.filter((s) => s.level === 'error' && s.msg === 'writing the audit trail failed').length).toBeGreaterThanOrEqual(1);
  expect(await metric(registry, 'fhirguard_audit_events_buffered')).toBe(5);
  rmSync(dir);
  mkdirSync(dir, { mode: 0o700 });
  recordMany(trail, 2, 5);
  await trail.flush();
  expect(trailEvents(dir).map(requestIdOf)).toEqual(ids(7));
  expect(said.some((s) => s.level === 'info' && s.msg === 'writing the audit trail works again')).toBe(true);
  await trail.close();
});

test('a descriptor closed underneath: the write fails loudly, the events go to a new file, none lost', async () => {
  const { trail, registry, said, dir } = open({ commitIntervalMs: 60_000 });
  recordMany(trail, 2);
  await trail.flush();
  const fd = (trail as unknown as { file: { handle: { fd: number } } }).file.handle.fd;
  closeSync(fd);
  recordMany(trail, 3, 2);
  await expect(trail.flush()).rejects.toMatchObject({ stage: 'write' });
  expect(await metric(registry, 'fhirguard_audit_write_failures_total', { stage: 'write' })).toBe(1);
  expect(said.some((s) => s.level === 'error' && (s.obj as { stage?: string }).stage === 'write')).toBe(true);
  await trail.flush();
  const events = trailEvents(dir);
  const unique = [...new Map(events.map((e) => [e.id, e])).values()];
  expect(unique.map(requestIdOf)).toEqual(ids(5));
  expect(trailFiles(dir)).toHaveLength(2);
  await trail.close();
});

test('while the disk fails, unwritten events are bounded: the excess is dropped and counted', async () => {
  const line = lineBytes();
  const { trail, registry, said, dir } = open({ commitIntervalMs: 60_000, maxBufferedBytes: line * 3 + 10 });
  rmSync(dir, { recursive: true });
  writeFileSync(dir, 'not a directory');
  recordMany(trail, 10);
  expect(await metric(registry, 'fhirguard_audit_events_dropped_total', { reason: 'buffer-full' })).toBe(7);
  expect(await metric(registry, 'fhirguard_audit_events_buffered')).toBe(3);
  expect(said.filter((s) => s.msg === 'keeping every AuditEvent failed')).toHaveLength(1);
  await expect(trail.close()).rejects.toBeInstanceOf(AuditTrailError);
  expect(await metric(registry, 'fhirguard_audit_events_dropped_total', { reason: 'closed' })).toBe(3);
});
