// The campaign's case number `index` under `seed`: drawn on its own from a seed derived from
// both, so any one case can be rebuilt (`--seed S --only I`) without drawing those before it.

import fc from 'fast-check';
import { CASE_HEADER, type FuzzCase } from './case';
import { rawCaseArb, stampRaw } from './framing';
import { httpCaseArb } from './request';

/** One raw-socket case in this many: framing shapes are slower to run than pooled requests. */
export const RAW_ONE_IN = 14;

const caseArb: fc.Arbitrary<FuzzCase> = fc.oneof({ weight: RAW_ONE_IN - 1, arbitrary: httpCaseArb }, { weight: 1, arbitrary: rawCaseArb });

/** A 32-bit seed from the campaign seed and the case index (splitmix-style mixing). */
export function caseSeed(seed: number, index: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) | 0;
}

export function caseAt(seed: number, index: number): FuzzCase {
  const [c] = fc.sample(caseArb, { seed: caseSeed(seed, index), numRuns: 1, unbiased: true });
  if (c.kind === 'raw') return stampRaw(c, index);
  return { ...c, headers: [...c.headers, [CASE_HEADER, String(index)]] };
}
