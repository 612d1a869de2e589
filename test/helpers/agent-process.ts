// A real `fhirguard agent` process for tests: started from the compiled CLI with a temp
// state directory, waited on until its API answers and its workers serve, stopped with
// SIGTERM (its exit status is checked by the caller). An agent started as another user
// (spawnOpts.uid) runs from a copy of the install staged into the test's directory, as `up`
// stages it for its unprivileged processes: the checkout may be closed to that user.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AgentClient, type WorkerInfo } from '../../src/agent-api/client';
import { stagedInstallDir } from '../../src/enforce/layout';
import { stageInstall } from '../../src/install/stage';
import { FHIRGUARD, REPO } from './confined';
import { poll } from './poll';

export interface AgentProcess {
  proc: ChildProcess;
  client: AgentClient;
  socketPath: string;
  stateDir: string;
  db: string;
  /** The install the agent's workers run from (the one a crashing writer must load its SQLite from). */
  install: string;
  /** Everything the agent (and its workers) wrote on stderr so far. */
  log(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM; resolves with the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const spawned = new Set<ChildProcess>();

/** Safety net for afterAll: SIGKILLs agents a failed test left running (their workers are
 * the agent's children or containers the next agent on that state directory removes). */
export function killLeftoverAgents(): void {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

export async function startAgent(dir: string, extraArgs: string[] = [], spawnOpts: SpawnOptions = {}): Promise<AgentProcess> {
  const stateDir = path.join(dir, 'state');
  const db = path.join(dir, 'data', 'fhir.db');
  const socketPath = path.join(stateDir, 'agent.sock');
  const otherUser = spawnOpts.uid !== undefined && spawnOpts.uid !== process.getuid?.();
  const bin = otherUser ? path.join(stageInstall(REPO, path.join(dir, 'install')).root, 'bin', 'fhirguard') : FHIRGUARD;
  const asRoot = (spawnOpts.uid ?? process.getuid?.()) === 0;
  const install = asRoot ? stagedInstallDir(stateDir) : path.resolve(bin, '..', '..');
  const proc = spawn(process.execPath, [bin, 'agent', '--state-dir', stateDir, '--db', db, '--log-level', 'info', ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(otherUser ? { cwd: path.dirname(bin) } : {}),
    ...spawnOpts,
  });
  spawned.add(proc);
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  void exited.then(() => (gone = true));
  const client = new AgentClient(socketPath);
  // The API answers once the workers are being started.
  await poll('the agent API to answer', async () => existsSync(socketPath) && (await client.workers(), true), {
    timeoutMs: 60_000,
    abort: () => (gone ? 'the agent exited' : undefined),
    detail: () => log,
  }).catch((err: Error) => {
    proc.kill('SIGKILL');
    throw err;
  });
  return {
    proc,
    client,
    socketPath,
    stateDir,
    db,
    install,
    log: () => log,
    exited,
    stop: async () => {
      if (gone) return exited;
      // Plain-process workers (degraded mode) would outlive a SIGKILLed agent: note them first.
      const pids = (await client.workers().catch(() => [])).map((w) => w.pid).filter((p): p is number => !!p);
      proc.kill('SIGTERM');
      const t = setTimeout(() => {
        proc.kill('SIGKILL');
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, 30_000);
      const exit = await exited;
      clearTimeout(t);
      return exit;
    },
  };
}

/** Polls GET /workers until `pred` holds for the list (a generous deadline: container starts on a loaded machine). */
export async function waitWorkers(client: AgentClient, pred: (ws: WorkerInfo[]) => boolean, timeoutMs = 90_000, log?: () => string): Promise<WorkerInfo[]> {
  let last: WorkerInfo[] = [];
  return poll(
    'the workers to reach the expected states',
    async () => {
      last = await client.workers();
      return pred(last) ? last : false;
    },
    { timeoutMs, intervalMs: 100, detail: () => `${JSON.stringify(last.map((w) => [w.id, w.state, w.restarts]))}${log ? `\n${log().split('\n').slice(-30).join('\n')}` : ''}` },
  );
}

export const allServing = (ws: WorkerInfo[]): boolean => ws.length > 0 && ws.every((w) => w.state === 'serving');
