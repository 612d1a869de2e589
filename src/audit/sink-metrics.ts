// The audit sink's metrics, in the registry the caller passes.

import { Counter, Gauge, type Registry } from 'prom-client';

export const ATTEMPT_FAILURES = ['network', 'status', 'response', 'trail'] as const;
export type AttemptFailure = (typeof ATTEMPT_FAILURES)[number];

export class SinkMetrics {
  readonly delivered: Counter;
  readonly rejected: Counter;
  readonly failedAttempts: Counter<'reason'>;
  readonly skippedLines: Counter;
  readonly pendingEvents: Gauge;
  readonly pendingBytes: Gauge;
  readonly up: Gauge;
  readonly overLimit: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.delivered = new Counter({ name: 'fhirguard_audit_sink_delivered_total', help: 'AuditEvents the FHIR server acknowledged (at least once each)', registers });
    this.rejected = new Counter({
      name: 'fhirguard_audit_sink_rejected_total',
      help: 'AuditEvents the FHIR server refused as invalid (400, 422): not sent again, still in the trail',
      registers,
    });
    this.failedAttempts = new Counter({
      name: 'fhirguard_audit_sink_failed_attempts_total',
      help: 'Deliveries that failed and will be retried, by reason (network, status, response, trail)',
      labelNames: ['reason'],
      registers,
    });
    this.skippedLines = new Counter({ name: 'fhirguard_audit_sink_skipped_lines_total', help: 'Trail lines that were not AuditEvents (cut short by a crash, damaged)', registers });
    this.pendingEvents = new Gauge({ name: 'fhirguard_audit_sink_pending_events', help: 'AuditEvents in the trail not yet delivered', registers });
    this.pendingBytes = new Gauge({ name: 'fhirguard_audit_sink_pending_bytes', help: 'Bytes of the trail not yet delivered', registers });
    this.up = new Gauge({ name: 'fhirguard_audit_sink_up', help: '1 when the last delivery succeeded (or none was needed yet), 0 when it failed', registers });
    this.overLimit = new Gauge({ name: 'fhirguard_audit_sink_backlog_over_limit', help: '1 while more events or bytes are pending than the configured limits', registers });
    for (const reason of ATTEMPT_FAILURES) this.failedAttempts.inc({ reason }, 0);
    this.up.set(1);
  }
}
