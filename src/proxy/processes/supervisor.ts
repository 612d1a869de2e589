// The proxy processes of one front door (`fhirguard proxy --processes N`, N > 1): one per
// core, each a whole `fhirguard proxy` accepting on the one FHIR listener the supervisor
// binds (shared-listener.ts). Their log lines (with their pid) go to the supervisor's own
// stdout and stderr: one stream. A process that exits unasked is replaced, after a pause that
// doubles up to a cap and starts again once a process has served a while; the others go on
// serving, and connections wait in the listener's queue meanwhile.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChildMessage } from './audit-handover';
import type { AuditEvent } from '../../audit/audit-event';

export interface SupervisorOptions {
  count: number;
  /** The command that runs one proxy process (node and its arguments, `--supervised` included). */
  command: string[];
  /** The shared FHIR listener's descriptor, passed as the child's fd 4. */
  listenerFd: number;
  env: NodeJS.ProcessEnv;
  log: Logger;
  registry: Registry;
  /** A child's AuditEvents (the supervisor keeps the trail). */
  audit(events: AuditEvent[]): void;
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  /** A process that served this long before it exited is replaced at once. */
  stableMs?: number;
}

interface Slot {
  index: number;
  proc: ChildProcess | null;
  /** The child's private admin listener, once it listens. */
  admin: string | null;
  startedAt: number;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
}

export class ProxySupervisor {
  private readonly slots: Slot[];
  private stopping = false;
  private readonly replaced: Counter;
  private readonly exits = new Map<ChildProcess, Promise<void>>();

  constructor(private readonly o: SupervisorOptions) {
    this.slots = Array.from({ length: o.count }, (_, index) => ({ index, proc: null, admin: null, startedAt: 0, backoffMs: 0, timer: undefined }));
    const slots = this.slots;
    new Gauge({
      name: 'fhirguard_proxy_processes',
      help: 'Proxy processes serving the FHIR listener (of --processes)',
      labelNames: ['state'],
      registers: [o.registry],
      collect() {
        this.set({ state: 'listening' }, slots.filter((s) => s.admin !== null).length);
        this.set({ state: 'configured' }, slots.length);
      },
    });
    this.replaced = new Counter({ name: 'fhirguard_proxy_processes_replaced_total', help: 'Proxy processes that exited unasked and were replaced', registers: [o.registry] });
  }

  start(): void {
    for (const s of this.slots) this.launch(s);
  }

  /** The private admin listeners of the processes that listen now. */
  admins(): { pid: number; admin: string }[] {
    return this.slots.flatMap((s) => (s.proc?.pid !== undefined && s.admin ? [{ pid: s.proc.pid, admin: s.admin }] : []));
  }

  /** Resolves once every process listens (or `timeoutMs` passed: false). */
  async listening(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.slots.every((s) => s.admin !== null)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** SIGTERM to every process (each finishes its requests in flight); resolves once all exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.slots) {
      clearTimeout(s.timer);
      s.proc?.kill('SIGTERM');
    }
    await Promise.all(this.exits.values());
  }

  private launch(s: Slot): void {
    s.timer = undefined;
    if (this.stopping) return;
    const [bin, ...args] = this.o.command;
    // A process group of its own: a terminal's Ctrl-C reaches the supervisor alone, which stops
    // the processes in order (replacing none); they stop by themselves should it vanish.
    const proc = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc', this.o.listenerFd], env: this.o.env, detached: true });
    s.proc = proc;
    s.admin = null;
    s.startedAt = Date.now();
    proc.on('message', (m: ChildMessage) => {
      if (m.type === 'listening') {
        s.admin = m.admin;
        this.o.log.info({ child: proc.pid, process: s.index, admin: m.admin }, 'proxy process serving');
      } else if (m.type === 'audit') this.o.audit(m.events);
    });
    const exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exits.delete(proc);
        resolve();
        if (s.proc === proc) {
          s.proc = null;
          s.admin = null;
        }
        if (this.stopping) return;
        this.replaced.inc();
        const stable = Date.now() - s.startedAt >= (this.o.stableMs ?? 30_000);
        s.backoffMs = stable ? 0 : Math.min(this.o.maxBackoffMs ?? 10_000, Math.max(this.o.firstBackoffMs ?? 100, s.backoffMs * 2));
        this.o.log.error(
          { child: proc.pid, process: s.index, code, signal, restartInMs: s.backoffMs },
          `proxy process ${proc.pid} exited (${signal ?? code}); it is replaced, the others serve meanwhile`,
        );
        s.timer = setTimeout(() => this.launch(s), s.backoffMs);
      });
    });
    this.exits.set(proc, exited);
  }
}
