// The audit trail kept by the agent: the proxy under `fhirguard up` runs confined with nothing
// writable, so it hands its AuditEvents to the agent (POST /audit on the agent's socket), which
// appends them to the trail. Records are turned into events at once and sent in batches, at
// most every 20 ms, never making a request wait. While the agent does not take them (it is
// restarting), they wait, in order, up to a bound, and are sent again; beyond the bound new
// events are dropped, counted and logged.

import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AgentClient } from '../agent-api/client';
import { auditEvent, type AuditEvent } from '../audit/audit-event';
import type { AuditRecord } from '../audit/record';
import type { AuditDestination } from './audit-record';

/** Longest wait from a recorded event to its batch leaving. */
const BATCH_MS = 20;
/** Largest batch: what the agent takes in one POST. */
const MAX_BATCH_BYTES = 2 * 2 ** 20;
/** Most bytes of events kept while the agent does not take them. */
const MAX_WAITING_BYTES = 64 * 2 ** 20;
/** Longest pause between attempts while the agent does not answer. */
const MAX_RETRY_MS = 2_000;

export class AgentAudit implements AuditDestination {
  private waiting: string[] = [];
  private waitingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private retryMs = 0;
  private failures = 0;
  private droppedCount = 0;
  private off = false;
  private readonly dropped: Counter;
  private readonly queued: Gauge;

  constructor(
    private readonly client: AgentClient,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.dropped = new Counter({
      name: 'fhirguard_audit_handover_dropped_total',
      help: 'AuditEvents the proxy dropped because the agent did not take them and the wait was full',
      registers: [registry],
    });
    this.queued = new Gauge({ name: 'fhirguard_audit_handover_waiting', help: 'AuditEvents the proxy holds for the agent', registers: [registry] });
  }

  /** The agent keeps no trail (an agent run to record profiles): nothing more is sent. */
  private noTrail(): void {
    if (!this.off) this.log.warn('the agent keeps no audit trail: this front door audits nothing');
    this.off = true;
    this.dropped.inc(this.waiting.length);
    this.waiting = [];
    this.waitingBytes = 0;
    this.queued.set(0);
  }

  record(r: AuditRecord): void {
    this.append(auditEvent(r));
  }

  /** An event made elsewhere (a proxy process under the supervisor), sent like the proxy's own. */
  append(event: AuditEvent): void {
    if (this.off) return;
    const line = JSON.stringify(event) + '\n';
    if (this.waitingBytes + line.length > MAX_WAITING_BYTES) {
      this.dropped.inc();
      if (this.droppedCount++ % 1000 === 0) this.log.error({ dropped: this.droppedCount }, 'the agent is not taking AuditEvents and the wait is full: AuditEvents are dropped');
      return;
    }
    this.waiting.push(line);
    this.waitingBytes += line.length;
    this.queued.set(this.waiting.length);
    // Unref'd: waiting events never keep a stopping proxy alive (close() flushes them, bounded).
    this.timer ??= setTimeout(() => void this.send(), this.retryMs || BATCH_MS).unref();
  }

  /** Sends what waits, batch by batch, until nothing does or the agent fails. */
  private async send(): Promise<void> {
    this.timer = undefined;
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.waiting.length > 0) {
        let bytes = 0;
        let n = 0;
        while (n < this.waiting.length && (n === 0 || bytes + this.waiting[n].length <= MAX_BATCH_BYTES)) bytes += this.waiting[n++].length;
        try {
          await this.client.postAudit(this.waiting.slice(0, n).join(''));
        } catch (err) {
          if ((err as { status?: number }).status === 404) return this.noTrail();
          this.failures++;
          this.retryMs = Math.min(MAX_RETRY_MS, Math.max(50, this.retryMs * 2));
          if (this.failures === 1 || this.failures % 100 === 0)
            this.log.warn({ err, waiting: this.waiting.length, failures: this.failures }, 'the agent did not take AuditEvents; they wait and are sent again');
          this.timer ??= setTimeout(() => void this.send(), this.retryMs).unref();
          return;
        }
        this.waiting = this.waiting.slice(n);
        this.waitingBytes -= bytes;
        this.queued.set(this.waiting.length);
        if (this.failures > 0) this.log.info({ failures: this.failures }, 'the agent takes AuditEvents again');
        this.failures = 0;
        this.retryMs = 0;
      }
    } finally {
      this.sending = false;
    }
  }

  /** Sends what waits now; resolves once the agent took it (or gave up trying after `timeoutMs`). */
  async flush(timeoutMs = 5_000): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const deadline = Date.now() + timeoutMs;
    while (this.waiting.length > 0 && Date.now() < deadline) {
      await this.send();
      if (this.waiting.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
