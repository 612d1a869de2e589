// runc, driven from node. Containers run in the foreground (`runc run`): runc stays the
// parent of the container's process, forwards signals to it and exits with its status
// (128+signal when it was killed), and hands it our stdio as is (no terminal). All state
// lives under one root directory that belongs to fhirguard, so `list` sees only ours.

import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface ContainerState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
}

export class Runc {
  constructor(
    readonly binary: string,
    /** runc's --root: where it keeps container state (must not be shared with other runc users). */
    readonly root: string,
  ) {}

  private async call(args: string[]): Promise<string> {
    const { stdout } = await execFileP(this.binary, ['--root', this.root, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  /** Starts `runc run` for a bundle; the returned child exits when the container does. */
  run(id: string, bundle: string, stdio: StdioOptions): ChildProcess {
    return spawn(this.binary, ['--root', this.root, 'run', '--bundle', bundle, id], { stdio });
  }

  async state(id: string): Promise<ContainerState | null> {
    try {
      return JSON.parse(await this.call(['state', id])) as ContainerState;
    } catch {
      return null;
    }
  }

  async list(): Promise<ContainerState[]> {
    const out = await this.call(['list', '--format', 'json']);
    const parsed = JSON.parse(out || 'null') as ContainerState[] | null;
    return parsed ?? [];
  }

  async kill(id: string, signal = 'TERM'): Promise<void> {
    await this.call(['kill', id, signal]);
  }

  /** Removes a container whatever its state (killing it first); a missing one is fine. */
  async delete(id: string): Promise<void> {
    try {
      await this.call(['delete', '--force', id]);
    } catch (err) {
      if (!/does not exist|not exist|container not found/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    }
  }
}

export async function runcVersion(binary: string): Promise<string> {
  const { stdout } = await execFileP(binary, ['--version']);
  const m = /runc version (\S+)/.exec(stdout);
  return m ? m[1] : stdout.split('\n')[0];
}
