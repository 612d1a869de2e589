// The audit trail: one AuditEvent per handled request, as JSON lines appended to files
// `audit-<UTC time>.jsonl` in one directory (0700; files 0600). A file is never rewritten:
// the trail appends to the newest file only, and starts a new one when the file would grow
// past `maxFileBytes`, at UTC midnight, after a failed write, and on every start (the last
// line of a file a crash cut short then stays the last line of that file).
//
// Durability, exactly: record() serializes the event at once and queues it; nothing is on
// disk yet. A group commit appends every queued line to the file and fdatasyncs it, at most
// `commitIntervalMs` after the first queued line (sooner when `commitBytes` are queued); once
// that sync has returned, those lines survive a crash of the process or of the machine. A new
// file's directory entry is synced before lines are written to it. So a crash loses at most
// the lines of the last interval and of a commit in flight. flush() and close() resolve once
// every line recorded before the call is synced.
//
// The request path never waits for the disk: record() only queues, and commits run on
// libuv's thread pool. A failed open, write or sync is counted and logged, never thrown at the
// request path: the lines stay queued, in order, and are retried (a new file each time, with
// a growing pause) until they are written; lines a failed attempt may have left in the old
// file can then be written twice, which readers tell apart by the event id. While the disk
// fails, at most `maxBufferedBytes` wait in memory; events beyond that are dropped and counted.

import { mkdirSync, chmodSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { auditEvent, type AuditEvent, type AuditEventOptions } from './audit-event';
import { defaultAuditLog, FailureStreak, type AuditLog } from './log';
import type { AuditRecord } from './record';
import { listTrailFilesSync, syncDirectory, trailFileName, trailFileTime, utcDay } from './trail-files';
import { TrailMetrics, type WriteStage } from './trail-metrics';

export interface AuditTrailOptions {
  /** The trail's directory; made (0700) when missing. */
  dir: string;
  /** Where the trail's metrics go (default: a registry of its own). */
  registry?: Registry;
  log?: AuditLog;
  /** How the events name fhirguard (observer, site, address). */
  event?: AuditEventOptions;
  /** A file is closed for a new one before it would grow past this (default 64 MiB). */
  maxFileBytes?: number;
  /** Longest wait from a recorded event to its commit (default 20 ms). */
  commitIntervalMs?: number;
  /** Queued bytes that start a commit at once (default 1 MiB). */
  commitBytes?: number;
  /** Most bytes of unwritten events kept while the disk fails (default 64 MiB). */
  maxBufferedBytes?: number;
  /** The clock, epoch ms: decides the day of each line and the names of files. */
  now?: () => number;
}

export class AuditTrailError extends Error {
  constructor(
    message: string,
    readonly stage: WriteStage,
    readonly unwritten: number,
  ) {
    super(message);
  }
}

interface Line {
  bytes: Buffer;
  /** When it was recorded (the trail's clock), and that instant's UTC day. */
  at: number;
  day: string;
  seq: number;
}

interface OpenFile {
  handle: FileHandle;
  name: string;
  size: number;
  day: string;
}

type CommitResult = { ok: true } | { ok: false; error: AuditTrailError };

const MIB = 1024 * 1024;
/** The longest pause between attempts while the disk fails. */
const MAX_RETRY_MS = 1000;

export class AuditTrail {
  readonly dir: string;
  readonly metrics: TrailMetrics;
  private readonly log: AuditLog;
  private readonly eventOptions: AuditEventOptions;
  private readonly maxFileBytes: number;
  private readonly commitIntervalMs: number;
  private readonly commitBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly now: () => number;
  private readonly streak: FailureStreak;
  private readonly drops: FailureStreak;
  /** Lines waiting for a commit, and how many the commit in flight holds. */
  private queue: Line[] = [];
  private inFlight = 0;
  /** Bytes of both, not yet synced. */
  private unsyncedBytes = 0;
  private recorded = 0;
  private durable = 0;
  private file: OpenFile | undefined;
  private newestStamp: number;
  private timer: NodeJS.Timeout | undefined;
  private committing: Promise<CommitResult> | undefined;
  private retryMs = 0;
  private closed = false;

  constructor(o: AuditTrailOptions) {
    this.dir = path.resolve(o.dir);
    this.log = o.log ?? defaultAuditLog();
    this.metrics = new TrailMetrics(o.registry ?? new Registry());
    this.eventOptions = o.event ?? {};
    this.maxFileBytes = o.maxFileBytes ?? 64 * MIB;
    this.commitIntervalMs = o.commitIntervalMs ?? 20;
    this.commitBytes = o.commitBytes ?? MIB;
    this.maxBufferedBytes = o.maxBufferedBytes ?? 64 * MIB;
    this.now = o.now ?? Date.now;
    this.streak = new FailureStreak(this.log, 'error', 'writing the audit trail');
    this.drops = new FailureStreak(this.log, 'error', 'keeping every AuditEvent');
    // Made here, once, at start: a directory that cannot be made is the operator's to fix
    // before any request is served.
    if (mkdirSync(this.dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(this.dir, 0o700);
    const names = listTrailFilesSync(this.dir);
    this.newestStamp = names.length ? (trailFileTime(names[names.length - 1]) ?? 0) : 0;
  }

  /** The file being written, if one is open. */
  get currentFile(): string | undefined {
    return this.file?.name;
  }

  /** Queues the AuditEvent of one handled request; never throws, never waits. */
  record(r: AuditRecord): void {
    let event: AuditEvent;
    try {
      event = auditEvent(r, this.eventOptions);
    } catch (err) {
      // A record the proxy filled oddly must not throw into the request path: it is said instead.
      this.log.error({ err: (err as Error).message, requestId: String(r.requestId) }, 'an audit record could not be made into an AuditEvent');
      return;
    }
    this.append(event);
  }

  /** Queues an AuditEvent made elsewhere. */
  append(event: AuditEvent): void {
    if (this.closed) {
      this.metrics.dropped.inc({ reason: 'closed' });
      this.drops.failed(new Error('an AuditEvent was recorded after the audit trail was closed: dropped'), { dir: this.dir, id: event.id });
      return;
    }
    const bytes = Buffer.from(JSON.stringify(event) + '\n', 'utf8');
    if (this.unsyncedBytes + bytes.length > this.maxBufferedBytes) {
      this.metrics.dropped.inc({ reason: 'buffer-full' });
      this.drops.failed(new Error('the buffer of unwritten AuditEvents is full: an AuditEvent was dropped'), { dir: this.dir, buffered: this.buffered });
      return;
    }
    const at = this.now();
    this.queue.push({ bytes, at, day: utcDay(at), seq: ++this.recorded });
    this.unsyncedBytes += bytes.length;
    this.metrics.buffered.set(this.buffered);
    // A timer is only set while no commit is in flight, when every unsynced byte is queued.
    if (this.unsyncedBytes >= this.commitBytes && this.retryMs === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }

  /**
   * Resolves once every event recorded before the call is synced to disk. Rejects with an
   * AuditTrailError when a commit fails: the events stay queued and are retried.
   */
  async flush(): Promise<void> {
    const target = this.recorded;
    while (this.durable < target) {
      if (this.committing) await this.committing;
      if (this.durable >= target || this.queue.length === 0) break;
      const result = await this.startCommit();
      if (!result.ok) throw result.error;
    }
  }

  /**
   * Flushes, then closes the file. Later records are dropped (and counted). Rejects when
   * events could not be written: they are lost, and the error says how many.
   */
  async close(): Promise<void> {
    if (this.closed && !this.file) return;
    let failure: unknown;
    try {
      await this.flush();
    } catch (err) {
      failure = err;
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.committing) await this.committing;
    await this.closeFile();
    if (failure) {
      const lost = this.queue.length;
      this.metrics.dropped.inc({ reason: 'closed' }, lost);
      this.log.error({ dir: this.dir, lost }, 'the audit trail closed with AuditEvents it could not write');
      this.queue = [];
      this.unsyncedBytes = 0;
      this.metrics.buffered.set(0);
      throw failure;
    }
  }

  /** Events recorded and not yet synced. */
  private get buffered(): number {
    return this.queue.length + this.inFlight;
  }

  private schedule(): void {
    if (this.timer || this.committing || this.queue.length === 0 || this.closed) return;
    const delay = this.retryMs || (this.unsyncedBytes >= this.commitBytes ? 0 : this.commitIntervalMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.startCommit();
    }, delay);
    // The trail never keeps the process alive by itself: whoever stops it calls close().
    this.timer.unref();
  }

  private startCommit(): Promise<CommitResult> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.committing ??= this.commit().then((result) => {
      this.committing = undefined;
      this.schedule();
      return result;
    });
    return this.committing;
  }

  /** Writes and syncs the queued lines, file by file; never rejects. */
  private async commit(): Promise<CommitResult> {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = batch.length;
    let i = 0;
    let stage: WriteStage = 'open';
    try {
      while (i < batch.length) {
        stage = 'open';
        const file = await this.fileFor(batch[i]);
        let j = i;
        let bytes = 0;
        while (j < batch.length && batch[j].day === file.day && (file.size + bytes === 0 || file.size + bytes + batch[j].bytes.length <= this.maxFileBytes)) {
          bytes += batch[j].bytes.length;
          j++;
        }
        stage = 'write';
        await writeAll(
          file.handle,
          Buffer.concat(
            batch.slice(i, j).map((l) => l.bytes),
            bytes,
          ),
        );
        file.size += bytes;
        stage = 'sync';
        const end = this.metrics.fsync.startTimer();
        await file.handle.datasync();
        end();
        this.metrics.events.inc(j - i);
        this.metrics.bytes.inc(bytes);
        this.metrics.currentFile(file.name, file.size);
        this.durable = batch[j - 1].seq;
        this.inFlight -= j - i;
        this.unsyncedBytes -= bytes;
        this.metrics.buffered.set(this.buffered);
        i = j;
      }
      this.retryMs = 0;
      this.streak.recovered({ dir: this.dir });
      this.drops.recovered({ dir: this.dir });
      return { ok: true };
    } catch (err) {
      this.queue = batch.slice(i).concat(this.queue);
      this.inFlight = 0;
      this.metrics.buffered.set(this.buffered);
      this.metrics.failures.inc({ stage });
      // Whatever the failed attempt left in the file stays there; the retry starts a new one.
      await this.closeFile();
      this.retryMs = Math.min(MAX_RETRY_MS, Math.max(this.commitIntervalMs, this.retryMs * 2));
      const message = (err as Error).message;
      this.streak.failed(err, { dir: this.dir, stage, unwritten: this.queue.length });
      return { ok: false, error: new AuditTrailError(`writing the audit trail in ${this.dir} failed (${stage}): ${message}`, stage, this.queue.length) };
    }
  }

  /** The file `line` goes to: the open one, unless the day changed or it is full. */
  private async fileFor(line: Line): Promise<OpenFile> {
    const f = this.file;
    if (f) {
      const reason = f.day !== line.day ? 'day' : f.size > 0 && f.size + line.bytes.length > this.maxFileBytes ? 'size' : undefined;
      if (!reason) return f;
      this.metrics.rotations.inc({ reason });
      await this.closeFile();
    }
    return (this.file = await this.openFile(line));
  }

  /** A new file named after the time its first line was recorded. */
  private async openFile(first: Line): Promise<OpenFile> {
    const day = first.day;
    for (;;) {
      // Names only grow, even when the clock steps back or two files start in one millisecond.
      const stamp = Math.max(first.at, this.newestStamp + 1);
      this.newestStamp = stamp;
      const name = trailFileName(stamp);
      let handle: FileHandle;
      try {
        handle = await fsp.open(path.join(this.dir, name), 'ax', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      try {
        await handle.chmod(0o600);
        await syncDirectory(this.dir);
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
      this.metrics.currentFile(name, 0);
      return { handle, name, size: 0, day };
    }
  }

  private async closeFile(): Promise<void> {
    const f = this.file;
    this.file = undefined;
    this.metrics.currentFile(undefined, 0);
    if (!f) return;
    try {
      await f.handle.close();
    } catch (err) {
      // Its lines were synced (or are queued again): a failed close loses nothing.
      this.log.warn({ file: f.name, err: (err as Error).message }, 'closing an audit trail file failed');
    }
  }
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}
