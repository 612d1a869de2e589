// Searches: paging, every parameter type (string, token, reference, date, number, quantity,
// uri) with their modifiers and prefixes, chains, _has, _include, _revinclude, _sort,
// _elements, _total, POST _search, the Patient compartment, and what the worker refuses.

import { randomUUID } from 'node:crypto';
import { byVia, count as countAt, expectOutcome, pathOf, patient, type FhirRequestFn, type Json, type TargetOf, caseTest, type CaseOptions } from './target';

export function searchCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  const req: FhirRequestFn = (...a) => t().req(...a);
  const count = (query: string): Promise<number> => countAt(t(), query);

  describe('search', () => {
    let code: string;
    const ids: string[] = [];
    beforeAll(async () => {
      code = randomUUID();
      const { json: subject } = await req('POST', '/Patient', patient({ name: [{ family: 'Ørsted-Müller', given: ['Hans'] }] }));
      for (let i = 0; i < 5; i++) {
        const { json } = await req('POST', '/Observation', {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'urn:fhirguard:code', code }], text: 'Glucose measurement' },
          subject: { reference: `Patient/${subject.id}` },
          effectiveDateTime: `2020-0${i + 1}-15T10:00:00Z`,
          valueQuantity: { value: 10 * (i + 1), unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
          ...(i === 0 ? {} : { performer: [{ reference: `Patient/${subject.id}` }] }),
        });
        ids.push(json.id);
      }
    });

    test('paging with _count follows next links over all matches exactly once', async () => {
      const seen: string[] = [];
      let path: string | undefined = `/Observation?code=urn:fhirguard:code|${code}&_count=2`;
      let pages = 0;
      while (path) {
        const res = await req('GET', path);
        expect(res.json.total).toBe(5);
        seen.push(...res.json.entry.map((e: Json) => e.resource.id));
        pages++;
        const next = res.json.link.find((l: Json) => l.relation === 'next');
        path = next && pathOf(t(), next.url);
      }
      expect(pages).toBe(3);
      expect(seen.sort()).toEqual([...ids].sort());
    });

    test('dates, quantities, :missing, :text, :contains, accents, _sort, _elements, POST _search', async () => {
      const q = `Observation?code=${code}`;
      expect(await count(`${q}&date=ge2020-03-01`)).toBe(3);
      expect(await count(`${q}&date=lt2020-03`)).toBe(2);
      expect(await count(`${q}&date=2020-02`)).toBe(1);
      expect(await count(`${q}&date=ge2020-02&date=le2020-04`)).toBe(3);
      expect(await count(`${q}&date=sa2020-04-30`)).toBe(1);
      expect(await count(`${q}&value-quantity=ge30`)).toBe(3);
      expect(await count(`${q}&value-quantity=30||mg/dL`)).toBe(1);
      expect(await count(`${q}&value-quantity=30|http://unitsofmeasure.org|mg/dL`)).toBe(1);
      expect(await count(`${q}&value-quantity=30|http://unitsofmeasure.org|g`)).toBe(0);
      expect(await count(`${q}&value-quantity=lt25,gt45`)).toBe(3);
      expect(await count(`${q}&code:text=glucose`)).toBe(5);
      expect(await count(`${q}&status:not=final`)).toBe(0);
      expect(await count(`${q}&performer:missing=true`)).toBe(1);
      expect(await count(`${q}&performer:missing=false`)).toBe(4);
      expect(await count(`Patient?family=${encodeURIComponent('ØRSTED')}`)).toBeGreaterThanOrEqual(1);
      expect(await count(`Patient?family:contains=muller`)).toBeGreaterThanOrEqual(1);
      expect(await count(`Patient?family:exact=orsted-muller`)).toBe(0);

      const sorted = await req('GET', `/${q}&_sort=-value-quantity&_elements=valueQuantity`);
      expect(sorted.json.entry.map((e: Json) => e.resource.valueQuantity.value)).toEqual([50, 40, 30, 20, 10]);
      expect(sorted.json.entry[0].resource.status).toBeUndefined();
      expect(sorted.json.entry[0].resource.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));

      const byPost = await req('POST', '/Observation/_search', `code=${encodeURIComponent(code)}&date=ge2020-03-01`, {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(byPost.status).toBe(200);
      expect(byPost.json.total).toBe(3);
    });

    test('reference parameters, chains, _has, _include, _revinclude and _total', async () => {
      const subject = (await req('GET', `/Observation/${ids[0]}`)).json.subject.reference as string;
      const pid = subject.split('/')[1];
      const q = `Observation?code=${code}`;
      expect(await count(`${q}&subject=${subject}`)).toBe(5);
      expect(await count(`${q}&subject=${pid}`)).toBe(5);
      expect(await count(`${q}&subject:Patient=${pid}`)).toBe(5);
      expect(await count(`${q}&performer=${subject}`)).toBe(4);
      expect(await count(`${q}&subject=Patient/nobody-${Date.now()}`)).toBe(0);
      expect(await count(`${q}&subject:Patient.family=${encodeURIComponent('ørsted-mül')}`)).toBe(5);
      expect(await count(`${q}&subject:Patient.family=someone-else`)).toBe(0);
      expect(await count(`Patient?_id=${pid}&_has:Observation:subject:code=${code}`)).toBe(1);
      expect(await count(`Patient?_id=${pid}&_has:Observation:subject:code=nothing-${Date.now()}`)).toBe(0);

      const modes = (res: { json: Json }): Record<string, string[]> => {
        const out: Record<string, string[]> = {};
        for (const e of res.json.entry) (out[e.search.mode] ??= []).push(`${e.resource.resourceType}/${e.resource.id}`);
        return out;
      };
      const included = await req('GET', `/${q}&_include=Observation:subject&_count=2`);
      expect(included.status).toBe(200);
      expect(modes(included).match).toHaveLength(2);
      expect(modes(included).include).toEqual([subject]);
      const revincluded = await req('GET', `/Patient?_id=${pid}&_revinclude=Observation:subject`);
      expect(revincluded.status).toBe(200);
      expect(modes(revincluded).match).toEqual([subject]);
      expect(modes(revincluded).include.sort()).toEqual(ids.map((id) => `Observation/${id}`).sort());

      const accurate = await req('GET', `/${q}&_total=accurate&_count=1`);
      expect({ total: accurate.json.total, entries: accurate.json.entry.length }).toEqual({ total: 5, entries: 1 });
    });

    test('number and uri parameters', async () => {
      const tag = randomUUID();
      for (const p of [0.02, 0.3, 0.75]) {
        await req('POST', '/RiskAssessment', {
          resourceType: 'RiskAssessment',
          status: 'final',
          subject: { reference: 'Patient/x' },
          identifier: [{ system: 'urn:fhirguard:risk', value: tag }],
          prediction: [{ probabilityDecimal: p }],
        });
      }
      const q = `RiskAssessment?identifier=urn:fhirguard:risk|${tag}`;
      expect(await count(`${q}&probability=gt0.25`)).toBe(2);
      expect(await count(`${q}&probability=0.3`)).toBe(1);
      expect(await count(`${q}&probability=0.8`)).toBe(1); // 0.8 means [0.75, 0.85)
      expect(await count(`${q}&probability=le0.02`)).toBe(1);
      expect(await count(`${q}&probability=ap0.3`)).toBe(1);

      const base = `http://fhirguard.test/${tag}`;
      await req('POST', '/ValueSet', { resourceType: 'ValueSet', status: 'active', url: `${base}/vs/one` });
      await req('POST', '/ValueSet', { resourceType: 'ValueSet', status: 'active', url: `${base}/vs/two` });
      expect(await count(`ValueSet?url=${base}/vs/one`)).toBe(1);
      expect(await count(`ValueSet?url=${base}/vs`)).toBe(0);
      expect(await count(`ValueSet?url:below=${base}/vs/`)).toBe(2);
      expect(await count(`ValueSet?url:above=${base}/vs/one/child`)).toBe(1);
    });

    test('_lastUpdated and _sort=_lastUpdated', async () => {
      const res = await req('GET', `/Observation?code=${code}&_sort=-_lastUpdated`);
      const times = res.json.entry.map((e: Json) => Date.parse(e.resource.meta.lastUpdated));
      expect(times).toEqual([...times].sort((a, b) => b - a));
      expect(await count(`Observation?code=${code}&_lastUpdated=gt${new Date(Date.now() + 3_600_000).toISOString().slice(0, 19)}Z`)).toBe(0);
      expect(await count(`Observation?code=${code}&_lastUpdated=ge2020`)).toBe(5);
    });

    test('Patient compartment search', async () => {
      const obs = await req('GET', `/Observation/${ids[0]}`);
      const patientId = obs.json.subject.reference.split('/')[1];
      expect((await req('GET', `/Patient/${patientId}/Observation?_summary=count`)).json.total).toBe(5);
      expect((await req('GET', `/Patient/${patientId}/Observation?date=2020-01`)).json.entry).toHaveLength(1);
      expectOutcome(await req('GET', `/Encounter/${patientId}/Observation`), 404, /Patient compartment/);
    });

    test('refuses what it cannot honour', async () => {
      // [query, the worker's refusal, the proxy's]: the proxy checks parameters against the
      // R4 SearchParameter definitions first; what R4 allows but the worker does not
      // implement reaches the worker (null: the same refusal either way).
      const refused: Array<[string, RegExp, RegExp | null]> = [
        ['Observation?nonsense=1', /unknown search parameter 'nonsense'/, null],
        ['Observation?code-value-quantity=x$5', /not supported/, null],
        ['Observation?code:below=x', /modifier/, null],
        ['Observation?date=yesterday', /not a date/, /not a valid value for date parameter/],
        ['Observation?value-quantity=lots', /quantity/, null],
        ['Observation?_count=-1', /_count/, null],
        ['Observation?_summary=true', /_summary/, null],
        ['Observation?_include=*', /wildcard/, null],
        ['Observation?_include:iterate=Observation:subject', /iterat/, null],
        ['Observation?_sort=nonsense', /nonsense/, null],
        ['Observation?subject.nonsense=1', /nonsense/, null],
        ['Observation?status:missing=maybe', /true or false/, null],
        [`Observation?_id=${Array.from({ length: 1001 }, (_, i) => `id${i}`).join(',')}`, /at most 1000/, null],
      ];
      for (const [query, worker, proxy] of refused) expectOutcome(await req('GET', `/${query}`), 400, byVia(t(), worker, proxy ?? worker));
      const many = Array.from({ length: 30 }, () => `_id=${Array.from({ length: 900 }, (_, i) => `x${i}`).join(',')}`).join('&');
      expectOutcome(await req('POST', '/Observation/_search', many, { 'content-type': 'application/x-www-form-urlencoded' }), 400, /too many/);
    });
  });
}
