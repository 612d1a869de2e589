// The benchmark's child processes: spawned with a tail of their output kept (so one that dies
// says why), optionally pinned to CPUs with taskset, and all stopped at the end. Only the
// processes started here are ever signalled.

import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { pinned } from './pin';

interface Proc {
  name: string;
  child: ChildProcess;
}

const procs: Proc[] = [];
/** Children this module was asked to stop: their exit is expected, not news. */
const stopped = new WeakSet<ChildProcess>();

export interface SpawnOptions {
  /** 'pipe' keeps stdout readable by the caller (and in the tail); 'ignore' drops it; a file
   * descriptor writes it there (a measured process's log lines then cost the benchmark
   * process nothing while the next variant is measured). */
  stdout?: 'pipe' | 'ignore' | number;
  /** taskset CPU list, e.g. "1"; none: not pinned. */
  cpus?: string | null;
  cwd?: string;
}

/** Spawns `command args`, keeping the last 4,000 characters of its stderr (and of its
 * stdout when piped) to print if it exits before stopAll(). */
export function spawnLogged(name: string, command: string, args: string[], o: SpawnOptions = {}): ChildProcess {
  const [cmd, argv] = pinned(command, args, o.cpus ?? null);
  const child = spawn(cmd, argv, { cwd: o.cwd, stdio: ['ignore', o.stdout ?? 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stderr!.on('data', keep);
  // fhirguard logs (pino) on stdout: kept too.
  if ((o.stdout ?? 'pipe') === 'pipe') child.stdout!.on('data', keep);
  child.once('exit', (code, signal) => {
    if (!stopped.has(child)) process.stderr.write(`${name} exited (${code ?? signal}) during the benchmark; its last output:\n${tail}\n`);
  });
  procs.push({ name, child });
  return child;
}

export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
export async function stop(child: ChildProcess, graceMs = 10_000): Promise<void> {
  stopped.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
}

/** Stops every process spawnLogged started (newest first: proxies before their agents). */
export async function stopAll(): Promise<void> {
  for (const { child } of [...procs].reverse()) await stop(child);
}

/** Resolves once `check` answers true; throws after `timeoutMs`, or at once if `child` exits. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 120_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits for the first stdout line of `child` that `match` accepts, and returns what it returned. */
export function firstLine<T>(child: ChildProcess, name: string, match: (line: string) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const got = match(line);
        if (got !== undefined) {
          child.stdout!.off('data', onData);
          child.stdout!.resume();
          resolve(got);
          return;
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error(`${name} exited before it listened`)));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}
