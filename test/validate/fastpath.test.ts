// The fast FHIRPath closures must agree with fhirpath.js (the reference) wherever both give
// a verdict: every invariant evaluated while validating the whole example corpus and a
// Synthea bundle is evaluated both ways and compared, plus hand-made nodes for branches the
// corpus never takes (failing invariants, dates of different precision, empty results).

import * as path from 'node:path';
import { FALLBACK } from '../../src/fhir/validate/fastpath';
import type { CompiledInvariant, Env } from '../../src/fhir/validate/invariants';
import { FhirValidator } from '../../src/fhir/validate/validator';
import { EXAMPLES, jsonFiles, readJson, SYNTHEA } from './corpus';

interface Disagreement {
  key: string;
  type: string;
  fast: boolean | undefined;
  reference: boolean | undefined;
  node: string;
}

/** Wraps every compiled invariant so that each evaluation is also done by the reference. */
function instrument(v: FhirValidator, seen: Set<CompiledInvariant>, out: Disagreement[], counts: { both: number; fast: number }): void {
  const reg = v.registry as unknown as { get(name: string): { invariants: CompiledInvariant[]; slots: Map<string, { invariants: CompiledInvariant[] }> } | undefined };
  const original = reg.get.bind(reg);
  reg.get = (name: string) => {
    const t = original(name);
    if (!t) return t;
    const lists = [t.invariants, ...[...t.slots.values()].map((s) => s.invariants)];
    for (const list of lists) {
      for (const inv of list) {
        if (seen.has(inv) || !inv.fast) continue;
        seen.add(inv);
        const fast = inv.fast;
        inv.evaluate = (node: unknown, type: string, env: Env) => {
          let f: boolean | undefined | 'fallback';
          try {
            f = fast(node, type, env);
          } catch (e) {
            if (e !== FALLBACK) throw e;
            f = 'fallback';
          }
          const r = inv.reference(node, env);
          if (f !== 'fallback') {
            counts.fast++;
            if (r !== undefined) {
              counts.both++;
              if (f !== r) out.push({ key: inv.key, type, fast: f, reference: r, node: JSON.stringify(node).slice(0, 300) });
            }
          }
          return f === 'fallback' ? r : f;
        };
      }
    }
    return t;
  };
}

describe('fast FHIRPath closures agree with fhirpath.js', () => {
  test('on every invariant evaluation of the corpus', () => {
    const v = new FhirValidator();
    const disagreements: Disagreement[] = [];
    const counts = { both: 0, fast: 0 };
    instrument(v, new Set(), disagreements, counts);
    for (const f of jsonFiles(EXAMPLES)) v.validateResource(readJson(path.join(EXAMPLES, f)));
    v.validateResource(readJson(path.join(SYNTHEA, jsonFiles(SYNTHEA)[0])));
    expect(disagreements).toEqual([]);
    // The comparison is only worth something if it compared a lot.
    expect(counts.both).toBeGreaterThan(10000);
  });

  test('on failing and undecided cases the corpus does not contain', () => {
    const v = new FhirValidator();
    const disagreements: Disagreement[] = [];
    const counts = { both: 0, fast: 0 };
    instrument(v, new Set(), disagreements, counts);
    const cases: unknown[] = [
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'a', dataAbsentReason: { text: 'b' } },
      { resourceType: 'Patient', contact: [{ gender: 'male' }, { name: { family: 'x' } }] },
      { resourceType: 'Encounter', status: 'finished', class: { code: 'x' }, period: { start: '2020-01-02', end: '2020-01-01' } },
      { resourceType: 'Encounter', status: 'finished', class: { code: 'x' }, period: { start: '2020-01', end: '2020-01-15' } },
      { resourceType: 'Encounter', status: 'finished', class: { code: 'x' }, period: { start: '2020-01-01T10:00:00Z', end: '2020-01-01T09:00:00+02:00' } },
      { resourceType: 'Encounter', status: 'finished', class: { code: 'x' }, period: { start: '2021', end: '2020-12-31' } },
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 1, code: 'mg' } },
      {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'x' },
        valueRange: { low: { value: 5, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' }, high: { value: 1, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } },
      },
      { resourceType: 'Patient', telecom: [{ value: '555' }, { system: 'phone', value: '1' }] },
      { resourceType: 'Bundle', type: 'collection', total: 3 },
      { resourceType: 'Bundle', type: 'searchset', total: 3, entry: [{ fullUrl: 'http://x/Patient/1/_history/1', resource: { resourceType: 'Patient' } }] },
      { resourceType: 'Bundle', type: 'document', entry: [{ resource: { resourceType: 'Patient' } }] },
      { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'boolean', enableWhen: [{ question: 'q', operator: 'exists', answerString: 'x' }] }] },
      { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'display', required: true }] },
      {
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: { text: 'x' },
        subject: { reference: 'Patient/1' },
        dosageInstruction: [{ timing: { repeat: { duration: -1, period: 2 } } }],
      },
      {
        resourceType: 'ValueSet',
        status: 'draft',
        compose: { include: [{ concept: [{ code: 'a' }] }, { valueSet: ['http://x'], filter: [{ property: 'p', op: '=', value: 'v' }], concept: [{ code: 'b' }] }] },
      },
      { resourceType: 'Organization', telecom: [{ system: 'phone', value: '1', use: 'home' }] },
    ];
    for (const c of cases) v.validateResource(c);
    expect(disagreements).toEqual([]);
    expect(counts.both).toBeGreaterThan(20);
  });
});
