// The proxy's side of the agent API (and what `fhirguard up` uses to wait for workers):
// typed GETs over the agent's Unix socket, and a watch that delivers every worker state
// change as it happens, reconnecting when the agent restarts.

import http from 'node:http';
import { createInterface } from 'node:readline';
import type { TierTrust } from '../trust/start-check';
import type { CountersReport, EnforcementReport, ProfileInfo, TierEnforcement, WorkerInfo } from './messages';

export type { CountersReport, EnforcementReport, TierEnforcement, WorkerInfo, ProfileInfo, TierTrust };

export class AgentClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private get<T>(path: string): Promise<T> {
    return new Promise((resolve, reject) => {
      // A connection of its own per GET (agent: false): Node's global agent keeps sockets
      // alive, and one the agent's server closed as idle, reused in the same instant, failed
      // a GET with a bare "write EPIPE". A Unix-socket connect costs microseconds; these GETs
      // run per scrape and per wait, not per FHIR request.
      const req = http.request({ socketPath: this.socketPath, path, method: 'GET', timeout: this.timeoutMs, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.once('end', () => {
          if (res.statusCode !== 200) reject(new Error(`agent ${path}: HTTP ${res.statusCode}: ${body}`));
          else resolve(JSON.parse(body) as T);
        });
      });
      req.once('timeout', () => req.destroy(new Error(`agent ${path}: no answer in ${this.timeoutMs} ms`)));
      // Named, with the system code kept for callers that tell "not running" from the rest.
      req.once('error', (err: NodeJS.ErrnoException) => reject(Object.assign(new Error(`agent ${path}: ${err.message}`, { cause: err }), { code: err.code })));
      req.end();
    });
  }

  /** Hands the agent AuditEvents (one JSON per line) for its audit trail; resolves once it took them. */
  postAudit(lines: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path: '/audit',
          method: 'POST',
          timeout: this.timeoutMs,
          agent: false,
          headers: { 'content-type': 'application/x-ndjson', 'content-length': Buffer.byteLength(lines) },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.once('end', () => (res.statusCode === 204 ? resolve() : reject(Object.assign(new Error(`agent /audit: HTTP ${res.statusCode}: ${body}`), { status: res.statusCode }))));
        },
      );
      req.once('timeout', () => req.destroy(new Error(`agent /audit: no answer in ${this.timeoutMs} ms`)));
      req.once('error', (err) => reject(new Error(`agent /audit: ${err.message}`)));
      req.end(lines);
    });
  }

  async workers(): Promise<WorkerInfo[]> {
    return (await this.get<{ workers: WorkerInfo[] }>('/workers')).workers;
  }

  counters(): Promise<CountersReport> {
    return this.get('/counters');
  }

  enforcement(): Promise<EnforcementReport> {
    return this.get('/enforcement');
  }

  /**
   * Calls onWorker for every worker now and at each state change. When the agent goes away,
   * onDisconnect is called and the watch reconnects every retryMs until stop().
   */
  watch(onWorker: (w: WorkerInfo) => void, opts: { onDisconnect?: (err?: Error) => void; retryMs?: number } = {}): { stop(): void } {
    let stopped = false;
    let current: http.ClientRequest | null = null;
    let timer: NodeJS.Timeout | null = null;
    const connect = (): void => {
      if (stopped) return;
      let ended = false;
      const again = (err?: Error): void => {
        if (stopped || ended) return;
        ended = true;
        current = null;
        opts.onDisconnect?.(err);
        timer = setTimeout(connect, opts.retryMs ?? 500);
      };
      current = http.request({ socketPath: this.socketPath, path: '/events', method: 'GET' }, (res) => {
        // A destroyed response errors on the stream and on the readline over it.
        res.on('error', (err) => again(err));
        createInterface({ input: res })
          .on('line', (line) => {
            const e = JSON.parse(line) as { type: string; worker?: WorkerInfo };
            if (e.type === 'worker' && e.worker) onWorker(e.worker);
          })
          .on('error', (err) => again(err))
          .once('close', () => again());
      });
      current.once('error', (err) => again(err));
      current.end();
    };
    connect();
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        current?.destroy();
      },
    };
  }
}

/** Workers the proxy may route to: healthy and under their serve-phase policy. */
export function routable(w: WorkerInfo): boolean {
  return w.state === 'serving';
}
