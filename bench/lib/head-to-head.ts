// Head-to-head: two front processes measured in the same seconds on one shared CPU.
//
// On a shared VM the machine's speed drifts between consecutive runs by more than the
// difference bench:proxy looks for (one unchanged proxy varied ±15% in CPU per request over
// consecutive 5 s windows), so proxies measured one after the other are measured on different
// machines. Here both are pinned to the same CPU and loaded at once, each by its own wrk
// (pinned, like the upstream, to the other CPUs). The scheduler gives each about half that
// CPU, so each one's req/s is what half a CPU buys it, and whatever slows the machine slows
// both in the same seconds. Their req/s ratio is then the ratio of their throughput per CPU:
// the throughput ratio of two CPU-bound proxies, with the drift cancelled.
//
// The ratio means that only while the shared CPU is saturated: if the load generators or the
// upstream set the pace, both proxies idle and the ratio drifts toward 1. A round whose shared
// CPU was idle more than a tenth of the time is reported and left out of the ratio. The CPU
// time each proxy got is recorded too, to show the split was fair.

import { cpuSeconds, busySeconds } from './cpu-time';
import { cpuIndices, pinPid } from './pin';
import { stats, type Stats } from './stats';
import type { WrkRun } from './wrk';

/** A process under test: its URL and its pid (pinned to the shared CPU for the measurement). */
export interface Contender {
  variant: string;
  url: string;
  pid: number;
  /** Request headers its load carries (a bearer token, say). */
  headers?: Readonly<Record<string, string>>;
}

export interface HeadToHeadRound {
  aRps: number;
  bRps: number;
  /** b's req/s over a's. */
  ratio: number;
  /** CPU seconds each got per wall second (about 0.5 each when the split is fair). */
  aCpuShare: number;
  bCpuShare: number;
  /** CPU time each spent per request it served, in µs. */
  aCpuUsPerReq: number;
  bCpuUsPerReq: number;
  /** Busy fraction of the shared CPU over the round (steal included). */
  sharedBusy: number;
  /** Saturated (sharedBusy >= MIN_BUSY): only these rounds make the ratio. */
  counted: boolean;
}

export interface HeadToHead {
  a: string;
  b: string;
  sharedCpu: string;
  rounds: HeadToHeadRound[];
  /** b over a, over the counted rounds; null when fewer than half the rounds counted. */
  ratio: Stats | null;
}

export interface HeadToHeadOptions {
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
  /** The CPU both contenders share (a taskset list of one CPU) and the CPUs they go back to after. */
  sharedCpu: string;
  allCpus: string;
}

type Wrk = (url: string, connections: number, seconds: number, headers?: Readonly<Record<string, string>>) => Promise<WrkRun>;

/** Below this busy fraction of the shared CPU a round measured the load, not the proxies. */
const MIN_BUSY = 0.9;

/** The ratio over the counted rounds; null when fewer than half of them counted. */
export function ratioOf(rounds: readonly HeadToHeadRound[]): Stats | null {
  const counted = rounds.filter((r) => r.counted);
  return counted.length * 2 >= rounds.length ? stats(counted.map((r) => r.ratio)) : null;
}

export async function headToHead(a: Contender, b: Contender, o: HeadToHeadOptions, wrk: Wrk, log: (line: string) => void): Promise<HeadToHead> {
  const shared = cpuIndices(o.sharedCpu);
  pinPid(a.pid, o.sharedCpu);
  pinPid(b.pid, o.sharedCpu);
  try {
    log(`  head-to-head ${b.variant} vs ${a.variant} on CPU ${o.sharedCpu}: warm-up ${o.warmup} s`);
    await Promise.all([wrk(a.url, o.connections, o.warmup, a.headers), wrk(b.url, o.connections, o.warmup, b.headers)]);
    const rounds: HeadToHeadRound[] = [];
    for (let i = 1; i <= o.rounds; i++) {
      const start = process.hrtime.bigint();
      const [a0, b0, busy0] = [cpuSeconds(a.pid), cpuSeconds(b.pid), busySeconds(shared)];
      const [ra, rb] = await Promise.all([wrk(a.url, o.connections, o.seconds, a.headers), wrk(b.url, o.connections, o.seconds, b.headers)]);
      const wall = Number(process.hrtime.bigint() - start) / 1e9;
      const sharedBusy = (busySeconds(shared) - busy0) / (wall * shared.length);
      const [aCpu, bCpu] = [cpuSeconds(a.pid) - a0, cpuSeconds(b.pid) - b0];
      const round: HeadToHeadRound = {
        aRps: ra.rps,
        bRps: rb.rps,
        ratio: rb.rps / ra.rps,
        aCpuShare: aCpu / wall,
        bCpuShare: bCpu / wall,
        aCpuUsPerReq: (aCpu / ra.requests) * 1e6,
        bCpuUsPerReq: (bCpu / rb.requests) * 1e6,
        sharedBusy,
        counted: sharedBusy >= MIN_BUSY,
      };
      rounds.push(round);
      log(
        `  round ${i} ${a.variant} ${ra.rps.toFixed(0).padStart(6)} req/s (CPU ${round.aCpuShare.toFixed(2)})  ${b.variant} ${rb.rps.toFixed(0).padStart(6)} req/s (CPU ${round.bCpuShare.toFixed(2)})` +
          `  ratio ${(round.ratio * 100).toFixed(1)}%  shared CPU busy ${(sharedBusy * 100).toFixed(0)}%${round.counted ? '' : ' (not saturated: left out)'}`,
      );
    }
    return { a: a.variant, b: b.variant, sharedCpu: o.sharedCpu, rounds, ratio: ratioOf(rounds) };
  } finally {
    pinPid(a.pid, o.allCpus);
    pinPid(b.pid, o.allCpus);
  }
}
