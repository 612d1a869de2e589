// Median and spread of repeated runs: benchmarks report the median and min-max, never one run.

export interface Stats {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: how far the repeats disagree, 0 for one run. */
  spread: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const m = median(s);
  return { median: m, min: s[0], max: s[s.length - 1], spread: m ? (s[s.length - 1] - s[0]) / m : 0 };
}

/** The value at percentile p (0-100) of an ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
