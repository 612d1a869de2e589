// Summaries of repeated runs per (variant, workload) cell, their ratios against the bare
// proxy and against unconfined fhirguard, the noise of the whole run, and the table printed.

import type { LoadResult } from './loadgen';
import { median, stats, type Stats } from './stats';
import type { VariantId } from './variants';
import type { Workload, WorkloadName } from './workloads';

export interface Run extends LoadResult {
  repeat: number;
  /** CPU time of the measured processes (proxy and workers) per answered request, ms. */
  cpuMsPerReq: number;
  /** 1-minute load average as the run started (the benchmark's own processes count in it). */
  loadavg1: number;
  /** Busy time of the measured CPUs not spent by the measured processes, as a fraction of
   * those CPUs' time during the run: other programs, steal, and kernel threads, some working
   * for the measured processes (the disk flushes of the write workloads). */
  otherCpu: number;
}

export interface Ratios {
  /** variant / baseline, each on medians: throughput above 1 is faster, latency and CPU above 1 slower. */
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  cpuMsPerReq: number;
}

export interface Cell {
  variant: VariantId;
  workload: WorkloadName;
  runs: Run[];
  rps: Stats;
  p50: Stats;
  p90: Stats;
  p99: Stats;
  cpuMsPerReq: Stats;
  /** The load generator's own CPU use (fraction of its CPU) during the runs. */
  loadgenCpu: Stats;
  otherCpu: Stats;
  vsBare: Ratios | null;
  vsUnconfined: Ratios | null;
}

export function summarise(variant: VariantId, workload: WorkloadName, runs: Run[]): Cell {
  const s = (k: 'rps' | 'p50' | 'p90' | 'p99' | 'cpuMsPerReq' | 'loadgenCpu' | 'otherCpu'): Stats => stats(runs.map((r) => r[k]));
  return {
    variant,
    workload,
    runs,
    rps: s('rps'),
    p50: s('p50'),
    p90: s('p90'),
    p99: s('p99'),
    cpuMsPerReq: s('cpuMsPerReq'),
    loadgenCpu: s('loadgenCpu'),
    otherCpu: s('otherCpu'),
    vsBare: null,
    vsUnconfined: null,
  };
}

function ratios(a: Cell, b: Cell): Ratios {
  const r = (k: keyof Ratios): number => Math.round((a[k].median / b[k].median) * 1000) / 1000;
  return { rps: r('rps'), p50: r('p50'), p90: r('p90'), p99: r('p99'), cpuMsPerReq: r('cpuMsPerReq') };
}

/** Fills vsBare and vsUnconfined where the baseline cell was measured. */
export function addRatios(cells: Cell[]): void {
  for (const c of cells) {
    const base = (v: VariantId): Cell | undefined => cells.find((x) => x.workload === c.workload && x.variant === v);
    const bare = base('bare');
    const unconfined = base('fhirguard');
    c.vsBare = bare ? ratios(c, bare) : null;
    c.vsUnconfined = unconfined ? ratios(c, unconfined) : null;
  }
}

export interface Noise {
  /** Median and largest (max - min) / median of req/s across repeats, over all cells. */
  rpsSpreadMedian: number;
  rpsSpreadMax: number;
  rpsSpreadMaxCell: string;
  p50SpreadMedian: number;
  /** 1-minute load average at the start of the runs: min, median, max. */
  loadavg1: Stats;
  /** Other work on the measured CPUs during the runs (Run.otherCpu): min, median, max. */
  otherCpu: Stats;
}

export function noise(cells: Cell[]): Noise {
  const spreads = cells.map((c) => c.rps.spread);
  const worst = cells.reduce((a, b) => (b.rps.spread > a.rps.spread ? b : a), cells[0]);
  return {
    rpsSpreadMedian: spreads.length ? median(spreads) : 0,
    rpsSpreadMax: worst?.rps.spread ?? 0,
    rpsSpreadMaxCell: worst ? `${worst.variant} / ${worst.workload}` : '',
    p50SpreadMedian: cells.length ? median(cells.map((c) => c.p50.spread)) : 0,
    loadavg1: stats(cells.flatMap((c) => c.runs.map((r) => r.loadavg1))),
    otherCpu: stats(cells.flatMap((c) => c.runs.map((r) => r.otherCpu))),
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
const int = (x: number): string => Math.round(x).toLocaleString('en-US');
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const times = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(2)}x`);

const behindFhirguard = (c: Cell): boolean => c.variant.startsWith('fhirguard');

/** The table of one workload: medians over the repeats, req/s with its min-max. */
export function printWorkload(w: Workload, cells: Cell[], out: (s: string) => void): void {
  const rows = cells.filter((c) => c.workload === w.name);
  if (!rows.length) return;
  out(`\n${w.name}: ${w.describe}; ${w.connections} connection${w.connections > 1 ? 's' : ''}\n`);
  const head = ['variant', 'req/s (min-max)', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU ms/req', 'req/s vs bare', 'p50 vs bare', 'req/s vs unconf.', 'p50 vs unconf.'];
  const widths = [24, 22, 8, 8, 8, 11, 14, 12, 17, 15];
  const line = (cols: string[]): void => out(cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('') + '\n');
  line(head);
  for (const c of rows) {
    line([
      c.variant,
      `${int(c.rps.median)} (${int(c.rps.min)}-${int(c.rps.max)})`,
      ms(c.p50.median),
      ms(c.p90.median),
      ms(c.p99.median),
      ms(c.cpuMsPerReq.median),
      times(c.vsBare?.rps),
      times(c.vsBare?.p50),
      times(behindFhirguard(c) ? c.vsUnconfined?.rps : undefined),
      times(behindFhirguard(c) ? c.vsUnconfined?.p50 : undefined),
    ]);
  }
  const bound = rows.filter((c) => c.loadgenCpu.median >= LOADGEN_BOUND);
  if (bound.length) {
    out(`  note: the load generator used ${bound.map((c) => `${pct(c.loadgenCpu.median)} of its CPU for ${c.variant}`).join(', ')}: there it may be what limits req/s\n`);
  }
}

/** Load generator CPU use from which a cell's throughput may be the generator's limit. */
const LOADGEN_BOUND = 0.85;

export function printNoise(n: Noise, repeats: number, out: (s: string) => void): void {
  const other =
    `other work (other programs, steal, kernel threads such as disk flushes) took ${pct(n.otherCpu.median)} of the measured CPU(s) in the median run, ${pct(n.otherCpu.max)} at most; ` +
    `load average (1 min, the benchmark's own ~2 busy processes included) ${n.loadavg1.min}-${n.loadavg1.max}`;
  if (repeats < 2) {
    out(`\nnoise: one repeat only, no spread measured; ${other}\n`);
    return;
  }
  out(
    `\nnoise: req/s across the ${repeats} repeats differed by ${pct(n.rpsSpreadMedian)} of the median in the median cell, ` +
      `${pct(n.rpsSpreadMax)} at most (${n.rpsSpreadMaxCell}); p50 by ${pct(n.p50SpreadMedian)} in the median cell;\n${other}\n`,
  );
}
