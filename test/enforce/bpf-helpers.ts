// Real processes in real cgroup v2 directories for fhirguard's eBPF tests. The child is
// bpf/.output/fg-test-child: it prints "ready", then runs one command per stdin line using raw
// syscalls only, so once it is moved into a cgroup after "ready" the policy sees nothing but
// read, write and the command's own syscalls.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server } from 'node:net';
import { createInterface } from 'node:readline';
import { bpfOutputDir, cgroup2Mount } from '../../src/enforce/bpf';
import { poll } from '../helpers/poll';

export const TEST_CHILD = path.join(bpfOutputDir(), 'fg-test-child');
/** The cgroup v2 mount ('' when there is none: the suite then fails saying so). */
export const CGROUP2 = cgroup2Mount();

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Child {
  readonly exited: Promise<Exit>;
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;

  private constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    createInterface({ input: proc.stdout! })
      .on('line', (l) => this.push(l))
      .on('close', () => {
        this.closed = true;
        this.push(null);
      });
  }

  private push(line: string | null): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(line);
    } else if (line !== null) this.lines.push(line);
  }

  /** The next line the child prints, or null once its stdout closed (it died). */
  nextLine(): Promise<string | null> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Runs one command; its answer (`ok N` / `err ERRNO`), or null when the child died first. */
  async send(cmd: string): Promise<string | null> {
    if (!this.closed) this.proc.stdin!.write(cmd + '\n');
    return this.nextLine();
  }

  /** Starts the child outside any fhirguard cgroup, waits for "ready", then moves it into
   * `cgroup` (when given): from there on its syscalls are the policy's. */
  static async start(cgroup?: string): Promise<Child> {
    const c = new Child(spawn(TEST_CHILD, [], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const first = await c.nextLine();
    if (first !== 'ready') throw new Error(`fg-test-child did not start: ${first}`);
    if (cgroup) joinCgroup(cgroup, c.pid);
    live.add(c);
    void c.exited.then(() => live.delete(c));
    return c;
  }

  /** Starts the child through a shell that first puts itself into `cgroup`, so the exec and
   * the child's whole start-up run under the cgroup's policy (what a container's runtime does
   * before the worker's exec). */
  static async startInside(cgroup: string): Promise<Child> {
    const script = `echo $$ > '${path.join(cgroup, 'cgroup.procs')}' && exec '${TEST_CHILD}'`;
    const c = new Child(spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
    const first = await c.nextLine();
    if (first !== 'ready') throw new Error(`fg-test-child did not start in ${cgroup}: ${first}`);
    live.add(c);
    void c.exited.then(() => live.delete(c));
    return c;
  }
}

const live = new Set<Child>();

export async function killAll(): Promise<void> {
  const all = [...live];
  for (const c of all) c.proc.kill('SIGKILL');
  await Promise.all(all.map((c) => c.exited));
}

export function joinCgroup(cgroup: string, pid: number): void {
  writeFileSync(path.join(cgroup, 'cgroup.procs'), String(pid));
}

export function makeCgroup(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The cgroup v2 directory a process is in (from /proc/<pid>/cgroup's "0::" line). */
export function cgroupOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`process ${pid} has no cgroup v2 membership`);
  return path.join(CGROUP2, line.slice(3));
}

/** rmdir of a cgroup fails while a just-killed member is not yet reaped: poll. */
export async function removeCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 100 && existsSync(dir); i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (existsSync(dir)) throw new Error(`cgroup ${dir} still busy`);
}

/** A TCP server on 127.0.0.1 (ephemeral port) that accepts and closes: a connect target. */
export function listenLoopback(): Promise<{ port: number; server: Server }> {
  return new Promise((resolve) => {
    const server = createServer((sock) => sock.destroy()).listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ port: typeof a === 'object' && a ? a.port : 0, server });
    });
  });
}

/** Polls until `done()` holds or `ms` pass (the caller's assertions then say what is missing). */
export async function until(done: () => boolean, ms = 10000): Promise<void> {
  await poll('a condition', done, { timeoutMs: ms }).catch(() => undefined);
}
