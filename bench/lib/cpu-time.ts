// CPU time of processes: what a request costs the measured processes, a figure that a busy
// machine disturbs far less than throughput (which depends on the CPU share they get).

import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds (user + system, all threads) a process has used: /proc/<pid>/stat, in USER_HZ = 100 ticks. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
    .replace(/^.*\) /s, '')
    .split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The child processes of `pid` now (every thread's children, from /proc). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** Summed CPU seconds of `pids`; a pid that is gone counts 0. */
export function totalCpuSeconds(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuSeconds(pid);
    } catch {
      // exited: its time is lost, and the run says so through its errors
    }
  }
  return total;
}

/**
 * Busy CPU seconds (everything but idle and iowait, steal included: time this VM's CPU spent
 * elsewhere) of the CPUs numbered in `cpus` (all when null), from /proc/stat.
 */
export function busySeconds(cpus: number[] | null): number {
  let total = 0;
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || (cpus && !cpus.includes(Number(m[1])))) continue;
    const [user, nice, system, , , irq, softirq, steal] = m[2].trim().split(/\s+/).map(Number);
    total += user + nice + system + irq + softirq + (steal || 0);
  }
  return total / 100;
}
