// One confined process under runc: writes its bundle, starts `runc run`, and (when a
// beforeStart callback is given) holds the container between "cgroup exists" and "process
// starts" so the callback can register the cgroup with the tier's eBPF policy first.
// Used for workers (by the agent) and for `fhirguard exec`.

import type { ChildProcess, StdioOptions } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { writeBundle, type ContainerSpec } from './oci-bundle';
import type { Runc } from './runc';
import { StartGate } from './create-hook';

export interface ContainerExit {
  /** Exit status of the container's process as runc reports it: 128+signal when killed. */
  code: number;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  runc: Runc;
  id: string;
  /** The bundle directory (rewritten at each start). */
  bundleDir: string;
  spec: ContainerSpec;
  stdio: StdioOptions;
  /** Called with the container's cgroup v2 directory (and init pid) before its process runs;
   * a rejection aborts the start. */
  beforeStart?: (created: { pid: number }) => Promise<void>;
}

export class Container {
  readonly exited: Promise<ContainerExit>;
  private done = false;
  /** Host pid of the container's process, when known (it was started through the gate). */
  pid = 0;

  private constructor(
    readonly id: string,
    readonly runc: Runc,
    readonly child: ChildProcess,
    private readonly bundleDir: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.done = true;
        resolve({ code: code ?? (signal ? 128 + signalNumber(signal) : 1), signal });
      });
      child.once('error', () => {
        this.done = true;
        resolve({ code: 127, signal: null });
      });
    });
  }

  get running(): boolean {
    return !this.done;
  }

  /**
   * Starts the container. Resolves once runc runs it (and, with beforeStart, once the callback
   * succeeded and the process was released); rejects when the start failed.
   */
  static async start(o: StartOptions): Promise<Container> {
    // A container of this id left by a crashed agent would make runc refuse the name.
    await o.runc.delete(o.id);
    let gate: StartGate | undefined;
    let spec = o.spec;
    const beforeStart = o.beforeStart;
    if (beforeStart) {
      const gateDir = `${o.bundleDir}.gate`;
      await rm(gateDir, { recursive: true, force: true });
      gate = await StartGate.create(gateDir);
      spec = { ...spec, createRuntimeHook: gate.hook() };
    }
    await writeBundle(o.bundleDir, spec);
    const child = o.runc.run(o.id, o.bundleDir, o.stdio);
    const c = new Container(o.id, o.runc, child, o.bundleDir);
    if (!gate || !beforeStart) return c;
    // The hook reads its answer from a FIFO: our ends stay open until the container is gone,
    // or a FIFO closed by every side before the hook read it would drop the answer.
    const g = gate;
    void c.exited.then(() => g.close());
    const created = await Promise.race([
      gate.created(),
      c.exited.then((e): never => {
        throw new Error(`runc exited with status ${e.code} before the container was created`);
      }),
    ]);
    try {
      await beforeStart(created);
    } catch (err) {
      gate.release(false);
      await c.exited;
      await c.cleanup();
      throw err;
    }
    gate.release(true);
    c.pid = created.pid;
    return c;
  }

  /**
   * Resolves once runc's init has exec'ed the container's command (its comm no longer reads
   * runc:...), or the container is gone; needs the pid, i.e. a start through the gate.
   */
  async commandStarted(timeoutMs = 30_000): Promise<boolean> {
    if (!this.pid) return false;
    const deadline = Date.now() + timeoutMs;
    while (this.running && Date.now() < deadline) {
      let comm: string;
      try {
        comm = await readFile(`/proc/${this.pid}/comm`, 'utf8');
      } catch {
        return false; // gone
      }
      if (!comm.startsWith('runc:')) return true;
      await new Promise((r) => setTimeout(r, 5));
    }
    return false;
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when the container is gone. */
  async stop(graceMs = 10_000): Promise<ContainerExit> {
    if (this.running) {
      await this.runc.kill(this.id, 'TERM').catch(() => undefined);
      const timer = new Promise<'timeout'>((resolve) => {
        const t = setTimeout(() => resolve('timeout'), graceMs);
        void this.exited.then(() => clearTimeout(t));
      });
      if ((await Promise.race([this.exited, timer])) === 'timeout') {
        await this.runc.kill(this.id, 'KILL').catch(() => undefined);
      }
    }
    const exit = await this.exited;
    await this.cleanup();
    return exit;
  }

  /** Sends a signal to the container's process (e.g. KILL to test restarts). */
  async signal(sig: string): Promise<void> {
    await this.runc.kill(this.id, sig);
  }

  /** Removes runc's state and the bundle once the process has exited. */
  async cleanup(): Promise<void> {
    await this.runc.delete(this.id).catch(() => undefined);
    await rm(this.bundleDir, { recursive: true, force: true });
    await rm(`${this.bundleDir}.gate`, { recursive: true, force: true });
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return constants.signals[sig] ?? 0;
}
