// The shipped policy with the fixture OSV advisories' findings waived, for tests that run
// the agent from a worker image built from this tree (its scan gate would refuse it
// otherwise: test/fixtures/osv aims high advisories at packages the image really holds).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './confined';

export const OSV_FIXTURES = path.join(REPO, 'test', 'fixtures', 'osv');

/** The fixture advisories at or above high that a built image matches. */
export const FIXTURE_FINDINGS = ['FGTEST-2025-0001', 'FGTEST-2025-0003', 'FGTEST-2025-0005'];

export function policyWithFixtureWaivers(): string {
  const shipped = readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8').replace(/\nsupplyChain:[\s\S]*$/, '\n');
  const waivers = FIXTURE_FINDINGS.map((id) => `    - id: ${id}\n      reason: test waiver of a fixture advisory\n      expires: 2999-01-01\n`).join('');
  return `${shipped}supplyChain:\n  scan:\n    failOn: high\n  waivers:\n${waivers}`;
}
