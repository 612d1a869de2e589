// How the audit trail and its sink speak to the operator: pino's calling convention (an
// object, then a message), and a failure streak that is said at once and then summed up, so
// a disk that stays full or a sink that stays down is loud without a line per attempt.

import pino from 'pino';

export interface AuditLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** JSON lines on stderr, as the other fhirguard processes log. */
export function defaultAuditLog(): AuditLog {
  return pino({ name: 'fhirguard-audit' }, pino.destination({ dest: 2, sync: true }));
}

export class FailureStreak {
  private failures = 0;
  private lastSaid = 0;
  private firstAt = 0;

  constructor(
    private readonly log: AuditLog,
    private readonly level: 'warn' | 'error',
    private readonly what: string,
    private readonly everyMs = 10_000,
  ) {}

  get count(): number {
    return this.failures;
  }

  /** One failure: said when it starts the streak, then at most once every `everyMs`. */
  failed(err: unknown, fields: object = {}): void {
    const now = Date.now();
    if (this.failures === 0) this.firstAt = now;
    this.failures++;
    if (this.failures > 1 && now - this.lastSaid < this.everyMs) return;
    this.lastSaid = now;
    const message = err instanceof Error ? err.message : String(err);
    this.log[this.level]({ ...fields, err: message, failures: this.failures, since: new Date(this.firstAt).toISOString() }, `${this.what} failed`);
  }

  /** The end of a streak, said when there was one. */
  recovered(fields: object = {}): void {
    if (this.failures === 0) return;
    this.log.info({ ...fields, failures: this.failures, since: new Date(this.firstAt).toISOString() }, `${this.what} works again`);
    this.failures = 0;
  }
}
