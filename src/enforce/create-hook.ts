// A gate between "the container's cgroup exists" and "its process starts": runc runs a
// createRuntime hook on the host once the container's init is in its cgroup and before
// the container's process is started; the hook (a two-line sh script) tells us over one
// FIFO and waits on a second FIFO for our answer. In between, fhirguard registers the
// cgroup with the tier's eBPF policy, so enforcement (and recording) covers everything the
// container does, runc's own steps inside it included. A `no` answer, or none within the
// hook's timeout, makes runc abort the start.

import { execFile } from 'node:child_process';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CreateRuntimeHook } from './oci-bundle';

const execFileP = promisify(execFile);

// $1: FIFO to announce on (runc's state JSON, then a newline); $2: FIFO to read the answer from.
const HOOK_SCRIPT = '{ cat; echo; } > "$1" && read answer < "$2" && [ "$answer" = go ]';

export interface CreatedContainer {
  /** Host pid of the container's init (runc's state). */
  pid: number;
}

export class StartGate {
  private announce?: net.Socket;
  private answer?: number;
  private lines: string[] = [];
  private waiters: Array<(line: string) => void> = [];

  private constructor(readonly dir: string) {}

  /** Makes the two FIFOs in `dir` (created 0700) and opens them without blocking. */
  static async create(dir: string): Promise<StartGate> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const gate = new StartGate(dir);
    await execFileP('mkfifo', ['-m', '0600', gate.announcePath, gate.answerPath]);
    // O_RDWR opens of a FIFO never block and keep it open whatever the hook does.
    const fd = openSync(gate.announcePath, constants.O_RDWR | constants.O_NONBLOCK);
    gate.announce = new net.Socket({ fd, readable: true, writable: false });
    let buf = '';
    gate.announce.setEncoding('utf8');
    gate.announce.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const w = gate.waiters.shift();
        if (w) w(line);
        else gate.lines.push(line);
      }
    });
    gate.answer = openSync(gate.answerPath, constants.O_RDWR | constants.O_NONBLOCK);
    return gate;
  }

  get announcePath(): string {
    return path.join(this.dir, 'created');
  }

  get answerPath(): string {
    return path.join(this.dir, 'answer');
  }

  hook(timeoutSeconds = 30): CreateRuntimeHook {
    return { path: '/bin/sh', args: ['sh', '-c', HOOK_SCRIPT, 'fhirguard-start-gate', this.announcePath, this.answerPath], timeout: timeoutSeconds };
  }

  /** Resolves when runc has created the container (its cgroup exists, its process has not started). */
  created(): Promise<CreatedContainer> {
    const line = this.lines.shift();
    const next = line !== undefined ? Promise.resolve(line) : new Promise<string>((resolve) => this.waiters.push(resolve));
    return next.then((l) => {
      const state = JSON.parse(l) as { pid?: number };
      return { pid: state.pid ?? 0 };
    });
  }

  /** Lets the container's process start (`go`) or makes runc abort (`no`). */
  release(go: boolean): void {
    if (this.answer === undefined) return;
    writeSync(this.answer, go ? 'go\n' : 'no\n');
  }

  close(): void {
    this.announce?.destroy();
    if (this.answer !== undefined) {
      closeSync(this.answer);
      this.answer = undefined;
    }
  }
}
