// The admin listener, apart from the FHIR port so metrics and probes are never exposed to
// FHIR clients: GET /metrics (Prometheus text), /healthz (the process answers), /readyz
// (every tier has a healthy upstream: a load balancer may send FHIR traffic), and POST /reload
// (read the policy file again; it can only re-read the file the process was started with).

import http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ReloadAnswer } from '../agent-api/reload';

export interface AdminOptions {
  registry: Registry;
  /** The /metrics text, when it is more than the registry's own (the supervisor's aggregation). */
  metrics?(): Promise<string>;
  /** Per tier: healthy members; ready when every tier has at least one (the supervisor: per process). */
  readiness(): { ready: boolean; [detail: string]: unknown } | Promise<{ ready: boolean; [detail: string]: unknown }>;
  log: Logger;
  /** Reads the policy file again (absent: no POST /reload). */
  reload?(): Promise<ReloadAnswer>;
}

export function createAdminServer(o: AdminOptions): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/reload' && o.reload) {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST /reload reads the policy file again\n');
        return;
      }
      req.resume();
      o.reload().then(
        (answer) => res.writeHead(answer.result === 'refused' ? 422 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(answer) + '\n'),
        (err: Error) => {
          o.log.error({ err }, 'policy reload failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`policy reload failed: ${err.message}\n`);
        },
      );
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics.json') {
      // What a supervisor aggregates over its processes (prom-client's metric JSON).
      o.registry.getMetricsAsJSON().then(
        (json) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(json)),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      (o.metrics ? o.metrics() : o.registry.metrics()).then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        (err: Error) => {
          o.log.error({ err }, 'collecting metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`);
        },
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
      return;
    }
    if (path === '/readyz') {
      void Promise.resolve(o.readiness()).then((r) => {
        const { ready, ...detail } = r;
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ready' : 'not-ready', ...detail }) + '\n');
      });
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('admin endpoints: /metrics /healthz /readyz, POST /reload\n');
  });
}
