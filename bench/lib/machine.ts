// What the figures were measured on: CPU, cores, memory, kernel, Node, and the load average
// (before and after), since on a shared machine the load says how far to trust them.

import { cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  nproc: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  node: string;
  loadavgStart: number[];
  loadavgEnd: number[];
}

export const load = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);

/** Machine facts now; `loadavgStart` is what the caller noted before it began. */
export function machine(loadavgStart: number[]): Machine {
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadavgStart,
    loadavgEnd: load(),
  };
}

export function describe(m: Machine): string {
  return `${m.nproc} x ${m.cpu}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}, load average ${m.loadavgStart.join(' ')} -> ${m.loadavgEnd.join(' ')}`;
}
