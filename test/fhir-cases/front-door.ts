// What a client of the whole front door does with real data: a Synthea patient's transaction
// stored whole and read back, and every next link followed to the end (searches, history,
// $everything). Run through the proxy, in front of plain workers and of confined ones.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/worker-process';
import { caseTest, expectStatus, pathOf, type CaseOptions, type FhirResult, type FhirTarget, type Json, type TargetOf } from './target';

export const SYNTHEA = join(REPO_ROOT, '..', 'shared', 'corpus', 'synthea', 'Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json');

/** Follows next links from `first` to the end; returns the pages. */
async function allPages(t: FhirTarget, first: string): Promise<FhirResult[]> {
  const pages: FhirResult[] = [];
  let path: string | undefined = first;
  while (path) {
    const page: FhirResult = await t.req('GET', path);
    expect({ path, status: page.status, outcome: page.status === 200 ? undefined : page.json }).toEqual({ path, status: 200, outcome: undefined });
    pages.push(page);
    const next = (page.json.link as Json[] | undefined)?.find((l) => l.relation === 'next')?.url as string | undefined;
    path = next === undefined ? undefined : pathOf(t, next); // on the public base, or it throws
  }
  return pages;
}

export function frontDoorCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  describe('real data through the front door', () => {
    let patientId: string;
    let bundle: Json;

    test('a Synthea patient transaction is stored whole and its resources are found by search', async () => {
      const text = readFileSync(SYNTHEA);
      bundle = JSON.parse(text.toString('utf8'));
      const res = await t().req('POST', '/', text);
      expectStatus(res, 200);
      expect(res.json.type).toBe('transaction-response');
      expect(res.json.entry).toHaveLength(bundle.entry.length);
      expect(res.json.entry.every((e: Json) => e.response.status === '201 Created')).toBe(true);

      const ident = bundle.entry.find((e: Json) => e.resource.resourceType === 'Patient').resource.identifier[0];
      const found = await t().req('GET', `/Patient?identifier=${encodeURIComponent(`${ident.system}|${ident.value}`)}`);
      expectStatus(found, 200);
      expect(found.json.total).toBe(1);
      patientId = found.json.entry[0].resource.id;
      const observations = bundle.entry.filter((e: Json) => e.resource.resourceType === 'Observation').length;
      const obs = await t().req('GET', `/Observation?subject=Patient/${patientId}&_summary=count`);
      expectStatus(obs, 200);
      expect(obs.json.total).toBe(observations);
    });

    test("a client following the server's next links pages through every result: search, history, $everything", async () => {
      const ids = (pages: FhirResult[]): string[] => pages.flatMap((p) => (p.json.entry ?? []).map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`));
      const total = (await t().req('GET', '/Observation?_summary=count')).json.total as number;
      const search = await allPages(t(), '/Observation?_count=7');
      expect(search.length).toBeGreaterThan(2);
      expect(new Set(ids(search)).size).toBe(total);

      const history = await allPages(t(), '/Observation/_history?_count=9');
      expect(history.length).toBeGreaterThan(2);
      expect(history.flatMap((p) => p.json.entry ?? []).length).toBe(history[0].json.total);

      const everything = await allPages(t(), `/Patient/${patientId}/$everything?_count=20`);
      expect(everything.length).toBeGreaterThan(2);
      const got = ids(everything);
      expect(new Set(got).size).toBe(got.length);
      expect(got).toContain(`Patient/${patientId}`);
      // The patient's compartment: every resource of the transaction that names the patient.
      const count = (types: string[]): Record<string, number> => Object.fromEntries(types.map((type) => [type, got.filter((r) => r.startsWith(`${type}/`)).length]));
      const inBundle = (types: string[]): Record<string, number> => Object.fromEntries(types.map((type) => [type, bundle.entry.filter((e: Json) => e.resource.resourceType === type).length]));
      const compartment = ['Observation', 'Encounter', 'Condition', 'Immunization', 'DiagnosticReport', 'Procedure', 'Claim', 'ExplanationOfBenefit'];
      expect(count(compartment)).toEqual(inBundle(compartment));
    });
  });
}
