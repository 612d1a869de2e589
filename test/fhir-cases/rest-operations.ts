// The operations the worker implements: $validate (type and instance level, Parameters
// input, modes) and Patient/[id]/$everything.

import { byVia, count, expectOutcome, patient, type FhirRequestFn, type Json, type TargetOf, caseTest, type CaseOptions } from './target';

export function operationsCases(t: TargetOf, o: CaseOptions = {}): void {
  const test = caseTest(o);
  const req: FhirRequestFn = (...a) => t().req(...a);

  describe('operations', () => {
    test('$validate at type level: valid and invalid resources, Parameters input', async () => {
      const ok = await req('POST', '/Patient/$validate', patient());
      expect(ok.status).toBe(200);
      expect(ok.json.issue.every((i: Json) => i.severity === 'information' || i.severity === 'warning')).toBe(true);
      // The proxy validates the body before any worker: it answers an invalid one itself (422).
      const bad = await req('POST', '/Patient/$validate', { resourceType: 'Patient', gender: 5, foo: 1 });
      expect(bad.status).toBe(byVia(t(), 200, 422));
      const errors = bad.json.issue.filter((i: Json) => i.severity === 'error');
      expect(errors.map((i: Json) => i.expression?.[0]).sort()).toEqual(['Patient.foo', 'Patient.gender']);
      const params = await req('POST', '/Observation/$validate', {
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: { resourceType: 'Observation', status: 'final' } },
          { name: 'mode', valueCode: 'create' },
        ],
      });
      expect(params.status).toBe(byVia(t(), 200, 422));
      expect(params.json.issue.some((i: Json) => i.severity === 'error' && /(Observation|parameter\[0\]\.resource)\.code$/.test(i.expression?.[0] ?? ''))).toBe(true);
      expectOutcome(await req('POST', '/Patient/$validate', { resourceType: 'Observation', status: 'final' }), byVia(t(), 400, 422));
      // Nothing was stored by validating.
      expect(await count(t(), 'Patient?gender=5')).toBe(0);
    });

    test('$validate at instance level checks the stored resource, and mode=delete', async () => {
      const { json } = await req('POST', '/Patient', patient());
      const stored = await req('GET', `/Patient/${json.id}/$validate`);
      expect(stored.status).toBe(200);
      expect(stored.json.issue.filter((i: Json) => i.severity === 'error')).toEqual([]);
      const wrongId = await req('POST', `/Patient/${json.id}/$validate`, { ...json, id: 'another' });
      expect(wrongId.json.issue.some((i: Json) => i.severity === 'error' && /another/.test(i.diagnostics))).toBe(true);
      const del = await req('POST', `/Patient/${json.id}/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
      expect(del.status).toBe(200);
      expectOutcome(await req('GET', `/Patient/missing-${Date.now()}/$validate`), 404);
    });

    test('$everything returns the patient, its compartment and what that refers to', async () => {
      const { json: org } = await req('POST', '/Organization', { resourceType: 'Organization', name: 'Clinic' });
      const { json: p } = await req('POST', '/Patient', patient({ managingOrganization: { reference: `Organization/${org.id}` } }));
      const { json: enc } = await req('POST', '/Encounter', {
        resourceType: 'Encounter',
        status: 'finished',
        class: { code: 'AMB' },
        subject: { reference: `Patient/${p.id}` },
        serviceProvider: { reference: `Organization/${org.id}` },
      });
      await req('POST', '/Patient', patient()); // someone else
      const res = await req('GET', `/Patient/${p.id}/$everything`);
      expect(res.status).toBe(200);
      const got = res.json.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`).sort();
      expect(got).toEqual([`Encounter/${enc.id}`, `Organization/${org.id}`, `Patient/${p.id}`].sort());
      expectOutcome(await req('GET', `/Patient/nobody-${Date.now()}/$everything`), 404);
      // Operations the worker does not implement: the shipped policy allows none of them.
      expectOutcome(await req('GET', `/Observation/x/$everything`), byVia(t(), 404, 403), byVia(t(), /not supported/, /policy/));
      expectOutcome(await req('POST', `/$reindex`, {}), byVia(t(), 404, 403), byVia(t(), /not supported/, /policy/));
    });
  });
}
