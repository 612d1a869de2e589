// A short hostile-request campaign (2,000 cases, bounded in time) against the real proxy
// from dist/: CI fails on any violated oracle. The full campaign is `npm run fuzz`
// (docs/fuzz.md); FUZZ_SEED picks another seed here.

import { DEFAULTS, runCampaign } from '../../fuzz/campaign';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const REQUESTS = 2_000;

test(`2,000 generated hostile requests (seed ${SEED}) violate no oracle`, async () => {
  const r = await runCampaign({ ...DEFAULTS, seed: SEED, requests: REQUESTS, maxSeconds: 240, log: () => undefined });
  const violated = Object.fromEntries(
    [...r.findings.violations].filter(([, v]) => v.count > 0).map(([oracle, v]) => [oracle, { count: v.count, examples: v.examples.slice(0, 2).map((e) => `index ${e.index}: ${e.detail}`) }]),
  );
  expect(violated).toEqual({});
  expect(r.sent).toBe(REQUESTS);
  // Not vacuous: allowed requests reached every tier.
  for (const tier of ['read', 'write', 'ops']) expect(r.upstreamRequests[tier]).toBeGreaterThan(0);
}, 300_000);
