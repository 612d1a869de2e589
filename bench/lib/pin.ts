// CPU pinning with taskset: the load generator on one CPU, the measured processes (proxies,
// workers, agents) on the others, so the thing that makes the load takes as little as a small
// machine allows from the things it measures. What was pinned is reported with the results.

import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

export interface CpuPlan {
  /** taskset CPU lists, e.g. "0" and "1". */
  loadgen: string;
  measured: string;
  /** In words, for the output. */
  note: string;
}

function hasTaskset(): boolean {
  return !spawnSync('taskset', ['-V']).error;
}

/** The plan for this machine, or null (with why) where pinning is off, impossible or pointless. */
export function cpuPlan(enabled: boolean): { plan: CpuPlan | null; why: string } {
  const n = cpus().length;
  if (!enabled) return { plan: null, why: 'pinning off (--no-pin): every process on every CPU' };
  if (n < 2) return { plan: null, why: `only ${n} CPU: nothing to pin apart` };
  if (!hasTaskset()) return { plan: null, why: 'taskset (util-linux) not found: nothing pinned' };
  const measured = n === 2 ? '1' : `1-${n - 1}`;
  return {
    plan: { loadgen: '0', measured, note: `load generator on CPU 0; proxies, workers and agents on CPU ${measured} (the benchmark's own driver is not pinned, and idles while a load runs)` },
    why: '',
  };
}

/** The CPU numbers of a taskset list such as "1" or "1-3,5". */
export function cpuIndices(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

/** `command args` run under `taskset -c cpus` (taskset execs: the pid stays the command's). */
export function pinned(command: string, args: string[], cpus: string | null): [string, string[]] {
  return cpus ? ['taskset', ['-c', cpus, command, ...args]] : [command, args];
}

/** Pins every thread of a running process (containers: runc's cgroup set-up resets affinity). */
export function pinPid(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpus} ${pid} failed: ${r.stderr || r.error}`);
}

/** bench:proxy's head-to-head: the last CPU shared by the two contenders, the others for load and upstream. */
export interface SharedCpuPlan {
  shared: string;
  rest: string;
  all: string;
}

export function sharedCpuPlan(): { plan: SharedCpuPlan | null; why: string } {
  const n = cpus().length;
  if (n < 2) return { plan: null, why: `only ${n} CPU: the load generators would share it with the proxies` };
  if (!hasTaskset()) return { plan: null, why: 'taskset (util-linux) not found' };
  return { plan: { shared: String(n - 1), rest: n === 2 ? '0' : `0-${n - 2}`, all: `0-${n - 1}` }, why: '' };
}
