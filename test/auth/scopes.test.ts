// SMART scopes read into grants: both versions' syntax, wildcards, granular queries, and what
// grants nothing (other scopes, unknown types, malformed permissions, reported).

import { loadSearchParameters } from '../../src/fhir/search-parameters';
import { ANY, granularFor, grants, parseScopes, PERM, permLetters } from '../../src/auth/scopes';

beforeAll(() => loadSearchParameters());

/** Every context's unconditional grants, as `context/type.letters`. */
function granted(scopes: string[]): string[] {
  const g = parseScopes(scopes);
  return (['patient', 'user', 'system'] as const).flatMap((c) => [...g[c].perms].map(([type, bits]) => `${c}/${type}.${permLetters(bits)}`)).sort();
}

test.each([
  [['patient/Observation.rs'], ['patient/Observation.rs']],
  [['user/*.cruds'], ['user/*.cruds']],
  [['system/Patient.r', 'system/Patient.s'], ['system/Patient.rs']],
  [['patient/*.read'], ['patient/*.rs']],
  [['user/Observation.write'], ['user/Observation.cud']],
  [['system/*.*'], ['system/*.cruds']],
  [['openid', 'fhirUser', 'launch/patient', 'offline_access', 'launch'], []],
  [['patient/Foo.rs', 'patient/observation.rs'], []],
])('%j grants %j', (scopes, expected) => {
  expect(granted(scopes)).toEqual(expected);
});

test('permissions out of SMART order, or unknown words, grant nothing and are reported', () => {
  const g = parseScopes(['patient/Observation.sr', 'user/Patient.rw', 'user/Patient.', 'user/Encounter.rs']);
  expect(granted(['patient/Observation.sr', 'user/Patient.rw', 'user/Patient.', 'user/Encounter.rs'])).toEqual(['user/Encounter.rs']);
  expect(g.malformed).toEqual([
    "patient/Observation.sr: 'sr' is neither SMART 2 permissions (c, r, u, d, s in that order) nor read, write or *",
    "user/Patient.rw: 'rw' is neither SMART 2 permissions (c, r, u, d, s in that order) nor read, write or *",
  ]);
});

test('a wildcard grants every type; a type scope only its type', () => {
  const g = parseScopes(['user/*.r', 'user/Observation.s']);
  expect(grants(g.user, 'Condition', PERM.r)).toBe(true);
  expect(grants(g.user, 'Observation', PERM.r | PERM.s)).toBe(true);
  expect(grants(g.user, 'Condition', PERM.r | PERM.s)).toBe(false);
  expect(grants(g.patient, 'Condition', PERM.r)).toBe(false);
  expect(grants(g.user, ANY, PERM.r)).toBe(true);
});

test('granular scopes keep their query and grant nothing without condition', () => {
  const lab = 'patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory';
  const g = parseScopes([lab, 'patient/Observation.rs?category=vital-signs&status=final', 'patient/Condition.rs?']);
  expect(grants(g.patient, 'Observation', PERM.s)).toBe(false);
  expect(granularFor(g.patient, 'Observation', PERM.s).map((x) => x.params)).toEqual([
    [['category', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory']],
    [
      ['category', 'vital-signs'],
      ['status', 'final'],
    ],
  ]);
  expect(granularFor(g.patient, 'Observation', PERM.c)).toEqual([]);
  expect(g.malformed).toEqual(['patient/Condition.rs?: the query of a granular scope must be name=value pairs']);
});
