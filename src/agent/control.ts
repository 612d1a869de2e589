// The agent's control socket: the one way to change what its workers run while it runs.
// Separate from the read-only API the proxy reads (reaching that one gives no power over
// workers): this socket is root's, mode 0600 in a directory of mode 0700, so only root can
// connect, and it is never handed to the proxy. `fhirguard rollout` talks to it.
//
//   POST /rollout         body: RolloutRequest (JSON)
//                         answer: NDJSON, one {"type":"progress",...} line per step, then one
//                         {"type":"result","ok":...,"reason"?:...} line
//   POST /policy/reload   read the policy file again (agent/policy-reload.ts); answer: a
//                         ReloadAnswer, 200 (applied, unchanged) or 422 (refused)

import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Agent } from './agent';
import { listenOnSocket } from './api';
import type { RolloutRequest } from './rollout';

/** Default place, under the state directory: control/agent.sock (directory 0700, socket 0600). */
export function defaultControlSocket(stateDir: string): string {
  return path.join(stateDir, 'control', 'agent.sock');
}
const MAX_BODY = 64 * 1024;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const ms = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number of milliseconds ≥ 0`);
  return v;
};

/** The request as sent, checked field by field; throws naming what is wrong. */
export function parseRolloutRequest(body: unknown): RolloutRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const known = ['tier', 'profilesDir', 'image', 'advisories', 'attestations', 'bakeMs', 'readyTimeoutMs', 'drainTimeoutMs'];
  const unknown = Object.keys(b).filter((k) => !known.includes(k));
  if (unknown.length) throw new Error(`unknown field(s): ${unknown.join(', ')}`);
  const tier = str(b.tier);
  if (!tier) throw new Error('tier is required');
  for (const k of ['profilesDir', 'advisories', 'attestations']) {
    if (b[k] !== undefined && !(typeof b[k] === 'string' && (b[k] as string).startsWith('/'))) throw new Error(`${k} must be an absolute path`);
  }
  const r: RolloutRequest = { tier };
  if (str(b.profilesDir)) r.profilesDir = str(b.profilesDir);
  if (str(b.image)) r.image = str(b.image);
  if (str(b.advisories)) r.advisories = str(b.advisories);
  if (str(b.attestations)) r.attestations = str(b.attestations);
  const bake = ms(b.bakeMs, 'bakeMs');
  const ready = ms(b.readyTimeoutMs, 'readyTimeoutMs');
  const drain = ms(b.drainTimeoutMs, 'drainTimeoutMs');
  if (bake !== undefined) r.bakeMs = bake;
  if (ready !== undefined) r.readyTimeoutMs = ready;
  if (drain !== undefined) r.drainTimeoutMs = drain;
  return r;
}

export async function serveControl(agent: Agent, o: { socketPath: string; log: Logger }): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (url.pathname !== '/rollout' && url.pathname !== '/policy/reload') {
      send(res, 404, { error: `no ${url.pathname}: the control socket has POST /rollout and POST /policy/reload` });
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      send(res, 405, { error: `${req.method} not allowed: POST ${url.pathname}` });
      return;
    }
    if (url.pathname === '/policy/reload') {
      req.resume();
      o.log.info('policy reload requested');
      agent.reloadPolicy().then(
        (answer) => send(res, answer.result === 'refused' ? 422 : 200, answer),
        (err: Error) => send(res, 500, { error: `policy reload failed: ${err.message}` }),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.once('end', () => {
      let r: RolloutRequest;
      try {
        if (size > MAX_BODY) throw new Error(`body over ${MAX_BODY} bytes`);
        r = parseRolloutRequest(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        send(res, 400, { error: `bad rollout request: ${(err as Error).message}` });
        return;
      }
      o.log.info({ request: r }, `rollout of tier ${r.tier} requested`);
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      // The rollout goes on when the operator's client goes away: stopping halfway would
      // leave two generations serving.
      const line = (v: unknown): void => {
        if (!res.destroyed) res.write(JSON.stringify(v) + '\n');
      };
      agent.rollout(r, line).then(
        (result) => {
          if (!result.ok) o.log.error({ tier: r.tier, reason: result.reason }, `rollout of tier ${r.tier} failed: ${result.reason}`);
          else o.log.info({ tier: r.tier, durationMs: result.durationMs }, `rollout of tier ${r.tier} done`);
          line(result);
          res.end();
        },
        (err: Error) => {
          o.log.error({ err }, `rollout of tier ${r.tier} failed`);
          line({ type: 'result', ok: false, tier: r.tier, reason: `agent error: ${err.message}`, workers: [], runs: '', durationMs: 0 });
          res.end();
        },
      );
    });
  });

  // In a directory only root may enter, so there is no moment where another user could
  // connect (a socket is created with the process's umask before chmod can tighten it).
  const dir = path.dirname(o.socketPath);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) await chown(dir, 0, 0);
  await chmod(dir, 0o700);
  await listenOnSocket(server, o.socketPath);
  await chmod(o.socketPath, 0o600);
  return {
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(o.socketPath, { force: true });
    },
  };
}
