// One measured run of a (variant, workload) cell: the load generator's run, the CPU time the
// target's processes spent on it, and the other work seen on the measured CPUs meanwhile.

import { cpus, loadavg } from 'node:os';
import { busySeconds, totalCpuSeconds } from './cpu-time';
import { runLoad } from './loadgen';
import { cpuIndices, type CpuPlan } from './pin';
import type { Run } from './report';
import { loadConfig, type Target } from './targets';
import type { Workload } from './workloads';

export interface RunOptions {
  /** Where the load generator's configuration file goes. */
  dir: string;
  seconds: number;
  warmup: number;
  plan: CpuPlan | null;
  repeat: number;
}

export async function measureRun(t: Target, w: Workload, o: RunOptions): Promise<Run> {
  const measuredCpus = o.plan ? cpuIndices(o.plan.measured) : null;
  const pids = await t.pids();
  const cpu = { pids0: 0, pids1: 0, busy0: 0, busy1: 0 };
  const loadavg1 = Math.round(loadavg()[0] * 100) / 100;
  const r = await runLoad(o.dir, loadConfig(t, w, o.seconds, o.warmup), o.plan?.loadgen ?? null, {
    start: () => {
      cpu.pids0 = totalCpuSeconds(pids);
      cpu.busy0 = busySeconds(measuredCpus);
    },
    end: () => {
      cpu.pids1 = totalCpuSeconds(pids);
      cpu.busy1 = busySeconds(measuredCpus);
    },
  });
  const spent = cpu.pids1 - cpu.pids0;
  // Unpinned, the load generator ran on the measured CPUs too: its time is ours, not other work.
  const ours = spent + (o.plan ? 0 : r.loadgenCpu * r.seconds);
  const capacity = r.seconds * (measuredCpus?.length ?? cpus().length);
  const otherCpu = Math.max(0, Math.round(((cpu.busy1 - cpu.busy0 - ours) / capacity) * 100) / 100);
  return { ...r, repeat: o.repeat, cpuMsPerReq: r.requests ? (spent * 1000) / r.requests : 0, loadavg1, otherCpu };
}
