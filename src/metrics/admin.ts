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
  /** Per tier: healthy members; ready when every tier has at least one. */
  readiness(): { ready: boolean; tiers: unknown };
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
    if (path === '/metrics') {
      o.registry.metrics().then(
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
      const r = o.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.ready ? 'ready' : 'not-ready', tiers: r.tiers }) + '\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('admin endpoints: /metrics /healthz /readyz, POST /reload\n');
  });
}
