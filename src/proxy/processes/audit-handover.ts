// A proxy process under the supervisor hands its AuditEvents to the supervisor, which keeps
// the one trail (or hands them to the agent): one writer per trail, as the trail's files and
// its sink assume. Events are made in the child (the work spreads over the processes) and
// sent over the IPC channel in batches, at most every 20 ms, never making a request wait.

import { auditEvent, type AuditEvent } from '../../audit/audit-event';
import type { AuditRecord } from '../../audit/record';
import type { AuditDestination } from '../audit-record';

const BATCH_MS = 20;

/** What a child says to its supervisor. */
export type ChildMessage = { type: 'listening'; admin: string; fhir: string } | { type: 'audit'; events: AuditEvent[] };

export class SupervisorAudit implements AuditDestination {
  private waiting: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly send: (m: ChildMessage, done: () => void) => void) {}

  record(r: AuditRecord): void {
    this.waiting.push(auditEvent(r));
    this.timer ??= setTimeout(() => void this.flush(), BATCH_MS).unref();
  }

  /** Sends what waits; resolves once it is written to the channel. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.length === 0) return Promise.resolve();
    const events = this.waiting;
    this.waiting = [];
    return new Promise((resolve) => this.send({ type: 'audit', events }, resolve));
  }
}
