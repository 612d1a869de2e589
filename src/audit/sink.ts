// Optional delivery of the trail's AuditEvents to a FHIR server (an audit record repository).
// The sink reads the trail files, never the trail's memory: it starts at its saved cursor,
// sends what follows, and saves the cursor after each acknowledged delivery. So a server that
// is down, or a restart of fhirguard, loses nothing: every event is delivered at least once
// (the last delivery before a crash may be sent twice). While the server is down the sink
// waits longer between attempts, up to `retryMaxMs`. It never deletes or shortens a trail
// file; when more than `maxPendingEvents` or `maxPendingBytes` are waiting it says so (a
// warning, and fhirguard_audit_sink_backlog_over_limit) and keeps going.

import * as path from 'node:path';
import { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { AuditEvent } from './audit-event';
import { defaultAuditLog, FailureStreak, type AuditLog } from './log';
import { Backlog, type TrailPosition } from './sink-backlog';
import { loadCursor, saveCursor, type SinkCursor } from './sink-cursor';
import { deliverBatch, deliverOne, DeliveryError, type DeliveryTarget, type SinkMode, type Verdict } from './sink-delivery';
import { SinkMetrics } from './sink-metrics';
import { listTrailFiles } from './trail-files';
import { countLines, readTrailFile } from './trail-read';

export interface AuditSinkOptions {
  /** The trail's directory. */
  dir: string;
  /** The FHIR server's base URL, e.g. https://audit.hospital.example/fhir. */
  base: string;
  /** `batch` (default): a batch Bundle POSTed to the base; `each`: one POST to `<base>/AuditEvent` per event. */
  mode?: SinkMode;
  /** Most events per delivery (default 100; `each` mode sends one at a time but reads this many). */
  batchSize?: number;
  /** Most bytes of events per delivery (default 4 MiB). */
  batchBytes?: number;
  /** Where the cursor is saved (default `<dir>/sink-cursor.json`). */
  cursorFile?: string;
  /** Sent with every request, e.g. an Authorization header. */
  headers?: Record<string, string>;
  /** For each request's headers and body (default 30 s). */
  timeoutMs?: number;
  /** How often to look for new lines when everything is delivered (default 1 s). */
  pollIntervalMs?: number;
  /** First pause after a failed delivery (default 1 s); it doubles up to retryMaxMs (default 60 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Pending events beyond which the sink warns (default 100 000). */
  maxPendingEvents?: number;
  /** Pending bytes beyond which the sink warns (default 256 MiB). */
  maxPendingBytes?: number;
  registry?: Registry;
  log?: AuditLog;
  /** undici dispatcher for the requests (TLS options, a proxy); default undici's global one. */
  dispatcher?: Dispatcher;
}

interface Batch {
  events: AuditEvent[];
  /** Where the cursor goes once each event is acknowledged. */
  ends: TrailPosition[];
  /** Where it goes once all are (past lines skipped after the last event too). */
  end: TrailPosition;
}

/** How often a backlog over the limits is said again while it lasts. */
const OVER_LIMIT_EVERY_MS = 5 * 60_000;

export class AuditSink {
  readonly metrics: SinkMetrics;
  private readonly dir: string;
  private readonly cursorFile: string;
  private readonly mode: SinkMode;
  private readonly batchSize: number;
  private readonly batchBytes: number;
  private readonly target: DeliveryTarget;
  private readonly pollIntervalMs: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly maxPendingEvents: number;
  private readonly maxPendingBytes: number;
  private readonly log: AuditLog;
  private readonly streak: FailureStreak;
  private readonly backlog: Backlog;
  private position: TrailPosition | undefined;
  private busy: Promise<unknown> = Promise.resolve();
  private loop: Promise<void> | undefined;
  private stopped = true;
  private wake: (() => void) | undefined;
  private abort: AbortController | undefined;
  private overLimitSaid = 0;

  constructor(o: AuditSinkOptions) {
    this.dir = path.resolve(o.dir);
    this.cursorFile = o.cursorFile ?? path.join(this.dir, 'sink-cursor.json');
    this.mode = o.mode ?? 'batch';
    this.batchSize = o.batchSize ?? 100;
    this.batchBytes = o.batchBytes ?? 4 * 1024 * 1024;
    this.target = { base: o.base.replace(/\/+$/, ''), headers: o.headers ?? {}, timeoutMs: o.timeoutMs ?? 30_000, ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}) };
    this.pollIntervalMs = o.pollIntervalMs ?? 1000;
    this.retryInitialMs = o.retryInitialMs ?? 1000;
    this.retryMaxMs = o.retryMaxMs ?? 60_000;
    this.maxPendingEvents = o.maxPendingEvents ?? 100_000;
    this.maxPendingBytes = o.maxPendingBytes ?? 256 * 1024 * 1024;
    this.log = o.log ?? defaultAuditLog();
    this.metrics = new SinkMetrics(o.registry ?? new Registry());
    this.streak = new FailureStreak(this.log, 'warn', `delivering AuditEvents to ${this.target.base}`);
    this.backlog = new Backlog(this.dir);
  }

  /** The saved place: the first line not delivered yet. */
  get cursor(): SinkCursor | undefined {
    return this.position && { file: this.position.file, offset: this.position.offset };
  }

  /** Delivers in the background until stop(): whatever is pending, then new lines as they come. */
  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Ends the background delivery; a request in flight is abandoned (and sent again next time). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * One pass: delivers everything pending now, batch by batch, saving the cursor after each.
   * Resolves with the number of events acknowledged; rejects with a DeliveryError on the first
   * delivery that fails (counted; the cursor stays before it).
   */
  deliverPending(): Promise<number> {
    const pass = this.busy.then(() => this.pass());
    this.busy = pass.catch(() => undefined);
    return pass;
  }

  private async run(): Promise<void> {
    let retryMs = this.retryInitialMs;
    while (!this.stopped) {
      let pause = this.pollIntervalMs;
      try {
        await this.deliverPending();
        retryMs = this.retryInitialMs;
      } catch {
        if (this.stopped) break;
        pause = retryMs;
        retryMs = Math.min(this.retryMaxMs, retryMs * 2);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async pass(): Promise<number> {
    let delivered = 0;
    for (;;) {
      let files: string[];
      let batch: Batch;
      try {
        const at = await this.origin();
        files = (await listTrailFiles(this.dir)).filter((f) => f >= at.file);
        batch = await this.read(files, at);
        await this.measure(files, batch.events.length ? at : batch.end);
        if (batch.events.length === 0 && (batch.end.file !== at.file || batch.end.offset !== at.offset)) await this.advance(batch.end);
      } catch (err) {
        this.metrics.failedAttempts.inc({ reason: 'trail' });
        this.streak.failed(err, { dir: this.dir });
        throw new DeliveryError(`reading the audit trail in ${this.dir}: ${(err as Error).message}`, 'trail');
      }
      if (batch.events.length === 0) return delivered;
      delivered += await this.send(batch);
      await this.measure(files, batch.end).catch(() => undefined);
    }
  }

  /** The position to read from: the saved cursor, loaded once. */
  private async origin(): Promise<TrailPosition> {
    if (this.position) return this.position;
    let saved: SinkCursor;
    try {
      saved = await loadCursor(this.cursorFile);
    } catch (err) {
      // Starting over resends events but loses none; a damaged cursor must not stop the audit.
      this.log.error({ cursor: this.cursorFile, err: (err as Error).message }, 'the sink cursor is unreadable: delivering the trail again from its first file');
      saved = { file: '', offset: 0 };
    }
    const linesBefore = saved.file ? await countLines(path.join(this.dir, saved.file), 0, saved.offset).catch(() => 0) : 0;
    return (this.position = { ...saved, linesBefore });
  }

  /** Up to batchSize events from `at` on, across files; the end says where the cursor goes after them. */
  private async read(files: readonly string[], at: TrailPosition): Promise<Batch> {
    const events: AuditEvent[] = [];
    const ends: TrailPosition[] = [];
    let bytes = 0;
    let pos = at;
    if (files.length && files[0] !== at.file && at.file !== '') {
      this.log.warn({ cursor: at.file, next: files[0] }, 'the trail file the sink was reading is gone: going on with the next one');
    }
    for (let i = 0; i < files.length; i++) {
      const name = files[i];
      const finished = i < files.length - 1;
      if (name !== pos.file) pos = { file: name, offset: 0, linesBefore: 0 };
      for await (const item of readTrailFile(path.join(this.dir, name), pos.offset)) {
        if (item.kind === 'torn') {
          // A newer file exists, so this one will never be appended to: a crash cut this line short.
          if (finished) this.skip(name, item.start, 'a line cut short');
          if (finished) pos = { file: name, offset: item.start + item.bytes, linesBefore: pos.linesBefore };
          break;
        }
        pos = { file: name, offset: item.end, linesBefore: pos.linesBefore + 1 };
        const event = parseEvent(item.text);
        if (!event) this.skip(name, item.start, 'not an AuditEvent');
        else {
          events.push(event);
          ends.push(pos);
          bytes += item.end - item.start;
        }
        if (events.length >= this.batchSize || bytes >= this.batchBytes) return { events, ends, end: pos };
      }
      if (!finished) break;
    }
    return { events, ends, end: pos };
  }

  private skip(file: string, offset: number, why: string): void {
    this.metrics.skippedLines.inc();
    this.log.warn({ file, offset }, `audit trail line skipped by the sink: ${why}`);
  }

  /**
   * Sends a batch and moves the cursor past what the server acknowledged: after the whole
   * Bundle, or after each event in `each` mode. Returns the events the server took.
   */
  private async send(batch: Batch): Promise<number> {
    this.abort = new AbortController();
    const target = { ...this.target, signal: this.abort.signal };
    let taken = 0;
    const judged = (v: Verdict, i: number): void => {
      if (v.ok) {
        taken++;
        this.metrics.delivered.inc();
        return;
      }
      this.metrics.rejected.inc();
      this.log.error({ id: batch.events[i].id, status: v.status, why: v.why }, 'the FHIR server refused an AuditEvent as invalid: it stays in the trail only');
    };
    try {
      if (this.mode === 'batch') {
        (await deliverBatch(target, batch.events)).forEach(judged);
      } else {
        for (let i = 0; i < batch.events.length; i++) {
          judged(await deliverOne(target, batch.events[i]), i);
          await this.advance(batch.ends[i]);
        }
      }
      await this.advance(batch.end);
      this.metrics.up.set(1);
      this.streak.recovered();
      return taken;
    } catch (err) {
      const e = err instanceof DeliveryError ? err : new DeliveryError((err as Error).message, 'network');
      // A request stop() abandoned says nothing about the server.
      if (this.stopped && this.loop) throw e;
      this.metrics.failedAttempts.inc({ reason: e.reason });
      this.metrics.up.set(0);
      this.streak.failed(e, { reason: e.reason, events: batch.events.length });
      throw e;
    } finally {
      this.abort = undefined;
    }
  }

  /** Saves the cursor at `to`; a cursor that cannot be saved fails the delivery (it is sent again). */
  private async advance(to: TrailPosition): Promise<void> {
    try {
      await saveCursor(this.cursorFile, to);
    } catch (err) {
      throw new DeliveryError(`saving the sink cursor ${this.cursorFile}: ${(err as Error).message}`, 'trail');
    }
    this.position = to;
  }

  private async measure(files: readonly string[], at: TrailPosition): Promise<void> {
    const pending = await this.backlog.measure(files, at);
    this.metrics.pendingEvents.set(pending.events);
    this.metrics.pendingBytes.set(pending.bytes);
    const over = pending.events > this.maxPendingEvents || pending.bytes > this.maxPendingBytes;
    this.metrics.overLimit.set(over ? 1 : 0);
    if (!over) {
      this.overLimitSaid = 0;
      return;
    }
    if (Date.now() - this.overLimitSaid < OVER_LIMIT_EVERY_MS) return;
    this.overLimitSaid = Date.now();
    this.log.warn(
      { pendingEvents: pending.events, pendingBytes: pending.bytes, maxPendingEvents: this.maxPendingEvents, maxPendingBytes: this.maxPendingBytes, base: this.target.base },
      'the audit sink is behind: more AuditEvents are waiting than its limits (they stay in the trail)',
    );
  }
}

function parseEvent(text: string): AuditEvent | undefined {
  try {
    const e = JSON.parse(text) as AuditEvent;
    return e && typeof e === 'object' && e.resourceType === 'AuditEvent' ? e : undefined;
  } catch {
    return undefined;
  }
}
