// The correctness bar: every official R4 example and every entry of the Synthea bundles is
// valid FHIR, so any error fhirguard reports on them is a false rejection.

import * as path from 'node:path';
import type { Issue } from '../../src/fhir/outcome';
import { FhirValidator } from '../../src/fhir/validate/validator';
import { EXAMPLES, FLAGGED, jsonFiles, readJson, SYNTHEA } from './corpus';

const validator = new FhirValidator();

function errors(issues: Issue[]): string[] {
  return issues.filter((i) => i.severity === 'error' || i.severity === 'fatal').map((i) => `${i.expression?.[0]}: ${i.code}: ${i.diagnostics}`);
}

describe('R4 examples: no false rejection', () => {
  const files = jsonFiles(EXAMPLES);

  test('the corpus is the 947 examples', () => {
    expect(files).toHaveLength(947);
  });

  // One test per hundred files keeps the report readable and each test well inside its timeout.
  const chunks: string[][] = [];
  for (let i = 0; i < files.length; i += 100) chunks.push(files.slice(i, i + 100));
  test.each(chunks.map((c, i) => [i, c] as const))('chunk %i', (_i, chunk) => {
    const rejected: Record<string, string[]> = {};
    for (const f of chunk) {
      const e = errors(validator.validateResource(readJson(path.join(EXAMPLES, f))));
      if (e.length) rejected[f] = e;
    }
    expect(rejected).toEqual({});
  });
});

describe('Synthea transaction bundles: no false rejection', () => {
  test.each(jsonFiles(SYNTHEA))('%s, as a bundle and entry by entry', (f) => {
    const bundle = readJson(path.join(SYNTHEA, f)) as { resourceType: string; entry: { resource: unknown }[] };
    expect(bundle.resourceType).toBe('Bundle');
    expect(errors(validator.validateResource(bundle))).toEqual([]);
    const rejected: string[] = [];
    bundle.entry.forEach((e, i) => {
      for (const msg of errors(validator.validateResource(e.resource))) rejected.push(`entry ${i}: ${msg}`);
    });
    expect(rejected).toEqual([]);
  });
});

describe('IBM-flagged examples (contested: reported, not targeted)', () => {
  test('each one gets a verdict without crashing', () => {
    const files = jsonFiles(FLAGGED);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const issues = validator.validateResource(readJson(path.join(FLAGGED, f)));
      expect(Array.isArray(issues)).toBe(true);
    }
  });
});
