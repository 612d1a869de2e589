// The refusal reasons are one catalogue (src/fhir/refusal-reasons.ts), and docs/metrics.md
// lists exactly those, with the same meaning, in the same order.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REFUSAL_REASONS } from '../../src/fhir/refusal-reasons';

const DOC = readFileSync(path.join(__dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');

test("docs/metrics.md's table of reasons is the catalogue", () => {
  const section = DOC.slice(DOC.indexOf('## Refusal reasons'));
  const rows = [...section.matchAll(/^\| `([a-z0-9-]+)` \| (.+) \|$/gm)].map((m) => [m[1], m[2]]);
  expect(rows).toEqual(Object.entries(REFUSAL_REASONS));
});

test('reasons are metric labels of one shape, each meaning said once', () => {
  for (const r of Object.keys(REFUSAL_REASONS)) expect(r).toMatch(/^[a-z][a-z0-9-]{1,40}$/);
  const meanings = Object.values(REFUSAL_REASONS);
  expect(new Set(meanings).size).toBe(meanings.length);
});
