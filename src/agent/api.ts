// The agent's API for the unprivileged proxy: JSON over HTTP on a Unix socket (mode 0660,
// group = the workers' group the proxy runs in). Nothing here changes what the agent does, so
// reaching the socket gives no power over workers. The one write is the audit trail's: the
// confined front door can write no file, so it hands its AuditEvents to the agent, which
// appends them to the trail (and an owned front door cannot rewrite what is there).
//   GET /workers      {workers: [{tier, id, address, state, restarts, ...}]}
//   GET /events       NDJSON: every worker first, then one line per state change
//   GET /counters     {available, reason?, eventsDropped, tiers: [{tier, action, syscalls, egressDenied, egressAllowed}]}
//   GET /enforcement  {degraded, tiers: [{tier, status, mode, mechanisms: {seccomp, ebpf, mount_ro, netns}, profile,
//                      trust: {status, reason?, message?, keyid?, subject?, checkedAt?, refusals} | null, startRefusals}]}
//   GET /health       {ok: true}
//   POST /audit       AuditEvents, one JSON per line (at most 4 MiB): appended to the trail; 204

import { chmod, chown, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Logger } from 'pino';
import type { Agent } from './agent';
import type { WorkerInfo } from '../agent-api/messages';
import type { AuditEvent } from '../audit/audit-event';
import type { AuditTrail } from '../audit/trail';

/** Largest body POST /audit takes. */
const MAX_AUDIT_BODY = 4 * 2 ** 20;

/** Appends the AuditEvents of a POST /audit body; anything that is not one is refused whole. */
function takeAudit(req: http.IncomingMessage, res: http.ServerResponse, trail: AuditTrail): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_AUDIT_BODY) {
      send(res, 413, { error: `more than ${MAX_AUDIT_BODY} bytes` });
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.once('end', () => {
    if (res.headersSent) return;
    const events: AuditEvent[] = [];
    for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
      if (line === '') continue;
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        return send(res, 400, { error: 'a line is not JSON' });
      }
      const e = event as { resourceType?: unknown; id?: unknown };
      if (!event || typeof event !== 'object' || e.resourceType !== 'AuditEvent' || typeof e.id !== 'string') return send(res, 400, { error: 'a line is not an AuditEvent with an id' });
      events.push(event as AuditEvent);
    }
    for (const event of events) trail.append(event);
    res.writeHead(204).end();
  });
}

export interface ApiOptions {
  socketPath: string;
  /** The audit trail the front door's AuditEvents go to; absent: POST /audit is 404. */
  audit?: AuditTrail;
  /** Group allowed to connect (0660); default: the socket stays root's. */
  gid?: number;
  log: Logger;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Listens on a Unix socket path, replacing a socket file a previous agent left there. */
export async function listenOnSocket(server: http.Server, socketPath: string): Promise<void> {
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function serveApi(agent: Agent, o: ApiOptions): Promise<{ close(): Promise<void> }> {
  const streams = new Set<http.ServerResponse>();
  const onWorker = (info: WorkerInfo): void => {
    const line = JSON.stringify({ type: 'worker', worker: info }) + '\n';
    for (const s of streams) s.write(line);
  };
  agent.on('worker', onWorker);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method === 'POST' && url.pathname === '/audit' && o.audit) {
      takeAudit(req, res, o.audit);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET');
      send(res, 405, { error: `${req.method} not allowed: the agent API is read-only but for POST /audit` });
      return;
    }
    switch (url.pathname) {
      case '/health':
        send(res, 200, { ok: true });
        return;
      case '/workers':
        send(res, 200, { workers: agent.workers() });
        return;
      case '/enforcement':
        send(res, 200, agent.enforcement());
        return;
      case '/counters':
        agent.counters().then(
          (c) => send(res, 200, c),
          (err) => {
            o.log.error({ err }, 'reading eBPF counters failed');
            send(res, 500, { error: `reading eBPF counters failed: ${(err as Error).message}` });
          },
        );
        return;
      case '/events': {
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        for (const w of agent.workers()) res.write(JSON.stringify({ type: 'worker', worker: w }) + '\n');
        streams.add(res);
        req.once('close', () => streams.delete(res));
        return;
      }
      default:
        send(res, 404, { error: `no ${url.pathname}: try /workers, /events, /counters, /enforcement` });
    }
  });

  await listenOnSocket(server, o.socketPath);
  if (o.gid !== undefined) await chown(o.socketPath, 0, o.gid);
  await chmod(o.socketPath, 0o660);

  return {
    close: async () => {
      agent.off('worker', onWorker);
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(o.socketPath, { force: true });
    },
  };
}
