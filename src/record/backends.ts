// What surrounds the recorded worker: plain reference workers for the other tiers (and the
// writer that loads the set-up data), and the real proxy in this process, on a copy of the
// policy whose every tier points at one Unix socket. Only the recorded worker is confined and
// recorded; requests reach it exactly as they would under `fhirguard up`, through classify,
// policy, validate and route.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, chown, chmod } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parseDocument } from 'yaml';
import { waitHealthy } from '../agent/health';
import { runProxy, type RunningProxy } from '../proxy/run';
import type { WorkerIdentity } from '../enforce/layout';

export interface WorkerSpec {
  tier: string;
  db: string;
  socketPath: string;
  readOnly: boolean;
  logLevel: string;
}

/** `fhirguard worker` arguments, as the agent gives them to its workers. */
export function workerArgs(install: string, w: WorkerSpec): string[] {
  return [path.join(install, 'bin', 'fhirguard'), 'worker', '--tier', w.tier, '--db', w.db, '--listen', `unix:${w.socketPath}`, '--log-level', w.logLevel, ...(w.readOnly ? ['--read-only'] : [])];
}

/** A socket directory the worker identity can create its socket in (0750, its own). */
export async function socketDirFor(dir: string, id: WorkerIdentity | null): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  if (id) await chown(dir, id.uid, id.gid);
  await chmod(dir, 0o750);
}

export class PlainWorker {
  /** Workers not stopped yet, for a command interrupted by a signal to stop them. */
  static readonly live = new Set<PlainWorker>();
  private stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly spec: WorkerSpec,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts an unconfined worker (as `id` when given) and waits until GET /metadata answers. */
  static async start(install: string, spec: WorkerSpec, id: WorkerIdentity | null): Promise<PlainWorker> {
    await socketDirFor(path.dirname(spec.socketPath), id);
    const child = spawn(process.execPath, workerArgs(install, spec), {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: install,
      ...(id ? { uid: id.uid, gid: id.gid } : {}),
    });
    const w = new PlainWorker(spec, child);
    PlainWorker.live.add(w);
    void w.exited.then(() => PlainWorker.live.delete(w));
    if (!(await waitHealthy(spec.socketPath, w.exited, 60_000))) {
      child.kill('SIGKILL');
      throw new Error(`the ${spec.tier} helper worker did not start: ${w.stderr.trim().slice(-1000)}`);
    }
    return w;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

/** A copy of the policy file in which every tier is served by the given Unix socket. */
export function policyWithUpstreams(policyFile: string, sockets: ReadonlyMap<string, string>, out: string): void {
  const doc = parseDocument(readFileSync(policyFile, 'utf8'));
  const tiers = doc.get('tiers') as { items: { get(k: string): unknown; set(k: string, v: unknown): void; delete(k: string): void }[] };
  for (const t of tiers.items) {
    const name = String(t.get('name'));
    const socket = sockets.get(name);
    if (!socket) throw new Error(`no worker socket for tier ${name}`);
    t.set('upstreams', [`unix:${socket}`]);
    t.delete('workers');
  }
  writeFileSync(out, doc.toString());
}

/** The proxy on an ephemeral loopback port, in this process. */
export async function startProxy(policyFile: string, log: Logger): Promise<RunningProxy> {
  const running = await runProxy(
    {
      policy: policyFile,
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      base: '/fhir',
      'body-limit': String(64 * 1024 * 1024),
      'max-depth': '64',
    },
    log,
  );
  if (typeof running === 'number') throw new Error(`the proxy did not start (status ${running})`);
  return running;
}
