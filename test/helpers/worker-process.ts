// Real `fhirguard worker` processes for tests: started from the compiled dist/ (run
// `npx tsc -p tsconfig.json` first), on a Unix socket, waited on until GET /metadata answers.
// Any test suite that needs a FHIR backend (the worker's own, the proxy's integration tests)
// uses these:
//
//   const dir = mkdtempSync(join(tmpdir(), 'fg-'));
//   const w = await startWorker({ tier: 'write', db: join(dir, 'fhir.db') });
//   const res = await fhirRequest(w.socket, 'GET', '/metadata');
//   await w.stop();                       // SIGTERM, waits for exit
//   afterAll(() => stopAllWorkers());     // safety net for failed tests

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'undici';
import { poll } from './poll';

export const REPO_ROOT = resolve(__dirname, '..', '..');
const BIN = join(REPO_ROOT, 'bin', 'fhirguard');

export interface StartWorkerOptions {
  /** Tier name (logs only); default `write`, or `read` for read-only workers. */
  tier?: string;
  /** SQLite database file. */
  db: string;
  readOnly?: boolean;
  /** Socket path; default `<dir of db>/<tier>-<n>.sock`. Reuse one to test stale-socket removal. */
  socket?: string;
  logLevel?: string;
  /** Extra environment for the process. */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for readiness (generous: a loaded 2-core machine). */
  readyTimeoutMs?: number;
}

export interface WorkerProcess {
  socket: string;
  pid: number;
  tier: string;
  db: string;
  readOnly: boolean;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (its pino log). */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL and wait for exit. */
  kill9(): Promise<void>;
}

const running = new Set<WorkerProcess>();
let counter = 0;

export interface FhirResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed JSON body, undefined when the body is empty or not JSON. */
  json: any;
}

const clients = new Map<string, Client>();

function clientFor(socket: string): Client {
  let c = clients.get(socket);
  if (!c) {
    c = new Client('http://localhost', { socketPath: socket, headersTimeout: 120_000, bodyTimeout: 120_000, keepAliveTimeout: 1000 });
    clients.set(socket, c);
  }
  return c;
}

/** Closes the pooled connection to a socket (e.g. before its worker is killed). */
export async function closeClient(socket: string): Promise<void> {
  const c = clients.get(socket);
  clients.delete(socket);
  if (c) await c.destroy().catch(() => undefined);
}

/**
 * One FHIR request to a worker's Unix socket. `body` objects are sent as
 * application/fhir+json unless headers say otherwise; strings and Buffers as given.
 */
export async function fhirRequest(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<FhirResult> {
  const h: Record<string, string> = { accept: 'application/fhir+json', ...headers };
  let payload: string | Buffer | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/fhir+json';
  }
  const res = await clientFor(socket).request({ method: method as 'GET', path, headers: h, body: payload });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

async function waitReady(w: WorkerProcess, timeoutMs: number): Promise<void> {
  let exited = false;
  void w.exited.then(() => {
    exited = true;
  });
  // A refused connection is "not yet": a stale socket file from an earlier process, or still binding.
  await poll(
    `worker ${w.tier} to answer /metadata`,
    async () => {
      if (!existsSync(w.socket)) return false;
      const probe = new Client('http://localhost', { socketPath: w.socket, headersTimeout: 10_000, bodyTimeout: 10_000 });
      try {
        const res = await probe.request({ method: 'GET', path: '/metadata' });
        await res.body.text();
        return res.statusCode === 200;
      } finally {
        await probe.close().catch(() => undefined);
      }
    },
    { timeoutMs, abort: () => (exited ? 'the worker exited before it was ready' : undefined), detail: () => w.stderr() },
  );
}

export type ChildExit = { code: number | null; signal: NodeJS.Signals | null };

/** SIGTERM to a child that still runs, SIGKILL after `timeoutMs`; resolves with its exit. */
export async function terminate(child: ChildProcess, exited: Promise<ChildExit>, timeoutMs: number): Promise<ChildExit> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export async function startWorker(opts: StartWorkerOptions): Promise<WorkerProcess> {
  const readOnly = opts.readOnly ?? false;
  const tier = opts.tier ?? (readOnly ? 'read' : 'write');
  const socket = opts.socket ?? join(dirname(opts.db), `${tier}-${process.pid}-${++counter}.sock`);
  const args = [BIN, 'worker', '--tier', tier, '--db', opts.db, '--listen', `unix:${socket}`, '--log-level', opts.logLevel ?? 'info'];
  if (readOnly) args.push('--read-only');
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });
  const w: WorkerProcess = {
    socket,
    pid: child.pid!,
    tier,
    db: opts.db,
    readOnly,
    child,
    stderr: () => stderr,
    exited,
    async stop(timeoutMs = 20_000) {
      await closeClient(socket);
      try {
        return await terminate(child, exited, timeoutMs);
      } finally {
        running.delete(w);
      }
    },
    async kill9() {
      await closeClient(socket);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      running.delete(w);
    },
  };
  running.add(w);
  try {
    await waitReady(w, opts.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await w.kill9();
    throw err;
  }
  return w;
}

/** Kills every worker this test file started and still runs (call in afterAll). */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...running].map((w) => w.kill9()));
  await Promise.all([...clients.keys()].map((s) => closeClient(s)));
}
