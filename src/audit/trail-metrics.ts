// The audit trail's metrics, in the registry the caller passes (the admin listener's, in the
// proxy). Labels come from fixed sets, but for the current file's name, of which one series
// is kept at a time.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const WRITE_STAGES = ['open', 'write', 'sync'] as const;
export type WriteStage = (typeof WRITE_STAGES)[number];

export const DROP_REASONS = ['buffer-full', 'closed'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export class TrailMetrics {
  readonly events: Counter;
  readonly bytes: Counter;
  readonly fsync: Histogram;
  readonly failures: Counter<'stage'>;
  readonly dropped: Counter<'reason'>;
  readonly buffered: Gauge;
  readonly rotations: Counter<'reason'>;
  private readonly file: Gauge<'file'>;
  private readonly fileBytes: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({ name: 'fhirguard_audit_events_written_total', help: 'AuditEvents written to the trail and synced to disk', registers });
    this.bytes = new Counter({ name: 'fhirguard_audit_bytes_written_total', help: 'Bytes of AuditEvent lines written to the trail and synced to disk', registers });
    this.fsync = new Histogram({
      name: 'fhirguard_audit_fsync_duration_seconds',
      help: 'Time to sync one group commit of the trail to disk',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.failures = new Counter({
      name: 'fhirguard_audit_write_failures_total',
      help: 'Failed attempts to open, write or sync a trail file (the events stay buffered and are retried)',
      labelNames: ['stage'],
      registers,
    });
    this.dropped = new Counter({
      name: 'fhirguard_audit_events_dropped_total',
      help: 'AuditEvents never written: the buffer of unwritten events was full, or the trail was closed',
      labelNames: ['reason'],
      registers,
    });
    this.buffered = new Gauge({ name: 'fhirguard_audit_events_buffered', help: 'AuditEvents recorded but not yet synced to disk', registers });
    this.rotations = new Counter({ name: 'fhirguard_audit_rotations_total', help: 'Trail files closed for a new one, by reason (size, day)', labelNames: ['reason'], registers });
    this.file = new Gauge({ name: 'fhirguard_audit_file_info', help: 'The trail file being written (value 1)', labelNames: ['file'], registers });
    this.fileBytes = new Gauge({ name: 'fhirguard_audit_file_bytes', help: 'Size of the trail file being written', registers });
    for (const stage of WRITE_STAGES) this.failures.inc({ stage }, 0);
    for (const reason of DROP_REASONS) this.dropped.inc({ reason }, 0);
    for (const reason of ['size', 'day']) this.rotations.inc({ reason }, 0);
  }

  currentFile(name: string | undefined, size: number): void {
    this.file.reset();
    if (name) this.file.set({ file: name }, 1);
    this.fileBytes.set(size);
  }
}
