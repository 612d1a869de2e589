// The public acceptance suite: one valid and one invalid resource per rule of the R4
// specification (see rule.ts and the rule files beside it). Every valid resource must be
// accepted; the invalid ones caught are counted, printed and held to a floor that only
// rises. A caught rule is one whose invalid resource gets an error located where the rule
// is broken (its FHIRPath expression starts with the rule's `at`).

import type { Issue } from '../../../src/fhir/outcome';
import { FhirValidator } from '../../../src/fhir/validate/validator';
import { bundleRules } from './bundles';
import { datatypeRules } from './datatypes';
import { extensionRules } from './extensions';
import type { Rule } from './rule';
import { slicingProfiles, slicingRules } from './slicing';
import { terminologyRules } from './terminology';

const SETS: [string, Rule[]][] = [
  ['extensions', extensionRules],
  ['bundles and contained resources', bundleRules],
  ['data types', datatypeRules],
  ['terminology', terminologyRules],
  ['slicing', slicingRules],
];

/** Invalid resources caught, at least (raise it as the validator learns rules). */
const FLOOR = 82;

const validator = new FhirValidator();
validator.profiles.load(slicingProfiles as { resourceType: string }[]);

function errors(r: unknown): Issue[] {
  return validator.validateResource(r).filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

function caught(rule: Rule): boolean {
  return errors(rule.invalid).some((i) => (i.expression ?? []).some((e) => e === rule.at || e.startsWith(rule.at + '.') || e.startsWith(rule.at + '[')));
}

const all = SETS.flatMap(([, rules]) => rules);

test('rule ids are unique', () => {
  expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
});

describe.each(SETS)('%s: the valid resource of every rule is accepted', (_name, rules) => {
  test.each(rules.map((r) => [r.id, r] as const))('%s', (_id, rule) => {
    expect(errors(rule.valid).map((i) => `${i.expression?.[0]}: ${i.diagnostics}`)).toEqual([]);
  });
});

test(`invalid resources caught: at least ${FLOOR}`, () => {
  const lines: string[] = [];
  let total = 0;
  for (const [name, rules] of SETS) {
    const missed = rules.filter((r) => !caught(r));
    total += rules.length - missed.length;
    lines.push(`${name}: ${rules.length - missed.length}/${rules.length}${missed.length ? ` (missed: ${missed.map((r) => r.id).join(', ')})` : ''}`);
  }
  lines.push(`all: ${total}/${all.length} (${((100 * total) / all.length).toFixed(1)}%)`);
  console.log(`acceptance suite\n${lines.join('\n')}`);
  expect(total).toBeGreaterThanOrEqual(FLOOR);
});
