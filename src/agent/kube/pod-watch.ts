// The pods of this node that carry the tier label, kept current the way Kubernetes clients do
// (an informer): list, then watch from the list's resourceVersion; a watch the server ends is
// resumed from the last version seen, one whose version is gone (410) starts over with a list,
// and a pod missing from a new list was deleted meanwhile. API errors are retried with backoff
// and logged; the agent keeps enforcing what it adopted while the API is away.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { KubeApiError, type KubeApi, type PodSelector } from './api';
import type { Pod } from './pods';

export interface PodEvents {
  /** A pod appeared or changed. */
  update(pod: Pod): void;
  /** A pod is gone (deleted, moved off the selectors, or missing from a new list). */
  remove(pod: Pod): void;
}

export interface PodWatchOptions {
  retryMs?: number;
  maxRetryMs?: number;
  /** Server-side length of one watch request. */
  watchSeconds?: number;
}

export class PodWatch {
  private readonly pods = new Map<string, Pod>();
  private version = '';
  private stopped = false;
  private abort = new AbortController();
  private loop: Promise<void> | null = null;
  private listedOnce = false;
  /** The last error, cleared by the next successful list or watch. */
  lastError: Error | null = null;

  constructor(
    private readonly api: KubeApi,
    private readonly sel: PodSelector,
    private readonly on: PodEvents,
    private readonly log: Logger,
    private readonly o: PodWatchOptions = {},
  ) {}

  /** True once a list succeeded (the agent knows its node's pods). */
  get synced(): boolean {
    return this.listedOnce;
  }

  current(): Pod[] {
    return [...this.pods.values()];
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', pod: Pod): void {
    if (type === 'DELETED') {
      this.pods.delete(pod.metadata.uid);
      this.on.remove(pod);
    } else {
      this.pods.set(pod.metadata.uid, pod);
      this.on.update(pod);
    }
  }

  private async relist(): Promise<void> {
    const list = await this.api.listPods(this.sel);
    const seen = new Set(list.items.map((p) => p.metadata.uid));
    for (const [uid, pod] of this.pods) {
      if (!seen.has(uid)) {
        this.pods.delete(uid);
        this.on.remove(pod);
      }
    }
    for (const p of list.items) this.apply('ADDED', p);
    this.version = list.resourceVersion;
    if (!this.listedOnce) this.log.info({ pods: list.items.length, ...this.sel }, 'pods of this node listed');
    this.listedOnce = true;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.version) await this.relist();
        const end = await this.api.watchPods(
          this.sel,
          this.version,
          (type, pod) => this.apply(type, pod),
          (v) => (this.version = v),
          { signal: this.abort.signal, ...(this.o.watchSeconds ? { timeoutSeconds: this.o.watchSeconds } : {}) },
        );
        if (end === 'gone') {
          this.log.info('pod watch: resourceVersion expired, listing again');
          this.version = '';
        }
        failures = 0;
        this.lastError = null;
      } catch (err) {
        if (this.stopped) break;
        // Some API servers answer a watch from an expired version with HTTP 410 itself.
        if (err instanceof KubeApiError && err.status === 410) this.version = '';
        failures++;
        this.lastError = err as Error;
        const wait = Math.min((this.o.retryMs ?? 500) * 2 ** Math.min(failures - 1, 8), this.o.maxRetryMs ?? 30_000);
        this.log.error({ err, retryInMs: wait, failures }, `Kubernetes API: ${(err as Error).message}`);
        await sleep(wait, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }
}
