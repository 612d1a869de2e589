// fhirguard's default workloads, made from the Synthea corpus: for every resource type in the
// data, every interaction the reference worker implements, in its success and its error
// forms (404, 409, 410, 412, 422 answered by the worker, paging, large bundles). Each
// candidate request is classified and decided by the policy exactly as the proxy will, and
// kept only when the policy routes it to the tier being recorded: a tier's workload is
// "everything the policy sends to it", whatever the policy says.

import { classify } from '../fhir/classify';
import { FhirError } from '../fhir/outcome';
import { searchParam } from '../fhir/search-parameters';
import type { Policy } from '../policy';
import { ANY_TYPE, compartmentMembers } from '../policy/reference-graph';
import { literalCopy, type Dataset, type SampleResource } from './corpus';
import { shuffled, type Step, type Workload } from './workload';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const FHIR_JSON = 'application/fhir+json';
const JSON_PATCH = 'application/json-patch+json';
/** A date every Synthea resource was last updated after: criteria that match every resource of a type. */
const EVERYTHING = '_lastUpdated=gt2000-01-01';
const BACKGROUND_MAX_BODY = 64 * 1024;
/** Order of the held-out workload: a fixed permutation, not the recording's order. */
export const HOLDOUT_SEED = 0x5eed6;

/** Ids the set-up makes for each type (FHIR ids: at most 64 characters). */
export const fixtureIds = (type: string): { deleted: string; copy: string; victim: string; created: string; missing: string } => ({
  deleted: `fg-deleted-${type}`,
  copy: `fg-copy-${type}`,
  victim: `fg-victim-${type}`,
  created: `fg-created-${type}`,
  missing: `fg-missing-${type}`,
});

function step(method: string, path: string, expect: number[], label: string, extra: Partial<Step> = {}): Step {
  return { method, path, expect, label, ...extra };
}

function jsonBody(body: unknown, headers: Record<string, string> = {}): Partial<Step> {
  return { body, headers: { 'content-type': FHIR_JSON, ...headers } };
}

/** A resource without server-assigned fields, for creates. */
function forCreate(r: Json): Json {
  const { id: _id, meta: _meta, ...rest } = r;
  return rest;
}

function withId(r: Json, id: string): Json {
  const { meta: _meta, ...rest } = r;
  return { ...rest, id };
}

function q(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

function patientOf(r: Json): string | undefined {
  for (const key of ['patient', 'subject', 'beneficiary']) {
    const ref = r[key]?.reference;
    if (typeof ref === 'string' && ref.startsWith('Patient/')) return ref;
  }
  return undefined;
}

function firstCoding(r: Json, key: string): { system: string; code: string } | undefined {
  const c = r[key]?.coding?.[0] ?? r[key]?.[0]?.coding?.[0];
  return typeof c?.system === 'string' && typeof c?.code === 'string' ? { system: c.system, code: c.code } : undefined;
}

/** The set-up: the half's bundles as PUT transactions, then per type a deleted resource, a
 * second version of the first sample, a copy (so criteria match several) and a resource
 * that delete interactions may remove. Sent straight to a writing worker. */
export function setupSteps(data: Dataset): Step[] {
  const out: Step[] = data.bundles.map((b) => step('POST', '/', [200], `load ${b.file}`, jsonBody(b.put)));
  for (const [type, samples] of [...data.byType].sort(([a], [b]) => a.localeCompare(b))) {
    const r0 = literalCopy(samples[0], data.refs);
    const ids = fixtureIds(type);
    out.push(step('PUT', `/${type}/${ids.deleted}`, [201], `fixture ${type} to delete`, jsonBody(withId(r0, ids.deleted))));
    out.push(step('DELETE', `/${type}/${ids.deleted}`, [200, 204], `fixture ${type} deleted`));
    out.push(step('PUT', `/${type}/${samples[0].id}`, [200], `fixture ${type} version 2`, jsonBody(withId(r0, samples[0].id))));
    out.push(step('PUT', `/${type}/${ids.copy}`, [201], `fixture ${type} copy`, jsonBody(withId(r0, ids.copy))));
    out.push(step('PUT', `/${type}/${ids.victim}`, [201], `fixture ${type} to be deleted by the workload`, jsonBody(withId(r0, ids.victim))));
  }
  return out;
}

interface TypeContext {
  type: string;
  sample: SampleResource;
  /** The sample with literal references. */
  r0: Json;
  id: string;
  patient?: string;
  ids: ReturnType<typeof fixtureIds>;
}

function readSteps(c: TypeContext): Step[] {
  const { type: T, id, ids } = c;
  const out: Step[] = [
    step('GET', `/${T}/${id}`, [200], `read ${T}`),
    step('GET', `/${T}/${ids.missing}`, [404], `read ${T} 404`),
    step('GET', `/${T}/${ids.deleted}`, [410], `read ${T} 410`),
    step('GET', `/${T}/${id}/_history/1`, [200], `vread ${T}`),
    step('GET', `/${T}/${id}/_history/99`, [404], `vread ${T} 404`),
    step('GET', `/${T}/${ids.deleted}/_history/1`, [200], `vread ${T} before deletion`),
    step('GET', `/${T}/${id}/_history`, [200], `history-instance ${T}`),
    step('GET', `/${T}/${ids.missing}/_history`, [404], `history-instance ${T} 404`),
    step('GET', `/${T}/_history?_count=20`, [200], `history-type ${T} paged`, { pages: 2 }),
    step('GET', `/${T}?_count=10`, [200], `search-type ${T} paged`, { pages: 3 }),
    step('GET', `/${T}?_count=1000`, [200], `search-type ${T} large bundle`),
    step('GET', `/${T}?${q({ _id: id })}`, [200], `search-type ${T} _id`),
    step('GET', `/${T}?${EVERYTHING}&_count=5&_sort=-_lastUpdated`, [200], `search-type ${T} _lastUpdated sorted`),
    step('GET', `/${T}?_summary=count`, [200], `search-type ${T} _summary=count`),
    step('GET', `/${T}?_elements=id&_count=200`, [200], `search-type ${T} _elements`),
    step('POST', `/${T}/_search`, [200], `search-type ${T} POST _search`, {
      body: q({ _id: id }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }),
  ];
  const identifier = c.r0.identifier?.[0];
  if (searchParam(T, 'identifier') && typeof identifier?.value === 'string') {
    const value = identifier.system ? `${identifier.system}|${identifier.value}` : identifier.value;
    out.push(step('GET', `/${T}?${q({ identifier: value })}`, [200], `search-type ${T} identifier`));
  }
  const code = firstCoding(c.r0, 'code') ?? firstCoding(c.r0, 'type');
  const codeParam = searchParam(T, 'code') ? 'code' : searchParam(T, 'type') ? 'type' : undefined;
  if (code && codeParam) out.push(step('GET', `/${T}?${q({ [codeParam]: `${code.system}|${code.code}` })}`, [200], `search-type ${T} ${codeParam}`));
  if (searchParam(T, 'date')) out.push(step('GET', `/${T}?date=ge2000-01-01&_sort=date&_count=20`, [200], `search-type ${T} date`));
  if (typeof c.r0.status === 'string' && searchParam(T, 'status')) out.push(step('GET', `/${T}?${q({ status: c.r0.status })}`, [200], `search-type ${T} status`));
  if (c.patient && T !== 'Patient' && searchParam(T, 'patient')) {
    out.push(step('GET', `/${T}?${q({ patient: c.patient, _include: `${T}:patient` })}`, [200], `search-type ${T} patient _include`));
    const members = compartmentMembers('Patient');
    if (members === ANY_TYPE || members.includes(T)) {
      out.push(step('GET', `/${c.patient}/${T}?_count=50`, [200], `search-compartment Patient/${T}`, { pages: 2 }));
    }
  }
  if (T === 'Patient') {
    const name = c.r0.name?.[0];
    if (typeof name?.family === 'string') out.push(step('GET', `/Patient?${q({ family: name.family })}`, [200], 'search-type Patient family'));
    if (typeof c.r0.birthDate === 'string') out.push(step('GET', `/Patient?birthdate=ge${c.r0.birthDate}&_count=20`, [200], 'search-type Patient birthdate'));
    if (typeof c.r0.gender === 'string') out.push(step('GET', `/Patient?${q({ gender: c.r0.gender })}`, [200], 'search-type Patient gender'));
    out.push(step('GET', `/Patient?${q({ _id: id, _revinclude: 'Observation:subject' })}`, [200], 'search-type Patient _revinclude'));
    out.push(step('GET', `/Patient?${q({ '_has:Observation:subject:status': 'final', _count: '5' })}`, [200], 'search-type Patient _has'));
    out.push(step('GET', `/Patient/${id}/Observation?_count=100`, [200], 'search-compartment Patient/Observation large'));
  }
  if (T === 'Observation') {
    out.push(step('GET', `/Observation?value-quantity=gt0&_count=50`, [200], 'search-type Observation value-quantity'));
    out.push(step('GET', `/Observation?_include=Observation:subject&_count=50`, [200], 'search-type Observation _include'));
  }
  if (T === 'Encounter') {
    out.push(step('GET', `/Encounter?${q({ 'subject:Patient.gender': 'female', _count: '20' })}`, [200], 'search-type Encounter chained'));
  }
  return out;
}

function writeSteps(c: TypeContext): Step[] {
  const { type: T, id, ids, r0 } = c;
  const patch = [{ op: 'add', path: '/language', value: 'en' }];
  const patchBody = (b: unknown, headers: Record<string, string> = {}): Partial<Step> => ({ body: b, headers: { 'content-type': JSON_PATCH, ...headers } });
  const stale = { 'if-match': 'W/"1"' };
  return [
    step('POST', `/${T}`, [201], `create ${T}`, jsonBody(forCreate(r0))),
    step('POST', `/${T}`, [200], `create ${T} If-None-Exist matching one`, jsonBody(forCreate(r0), { 'if-none-exist': q({ _id: id }) })),
    step('POST', `/${T}`, [412], `create ${T} If-None-Exist matching several 412`, jsonBody(forCreate(r0), { 'if-none-exist': EVERYTHING })),
    step('PUT', `/${T}/${id}`, [200], `update ${T}`, jsonBody(withId(r0, id))),
    step('PUT', `/${T}/${ids.created}`, [201], `update ${T} as create`, { ...jsonBody(withId(r0, ids.created)), once: true }),
    step('PUT', `/${T}/${id}`, [412], `update ${T} stale If-Match 412`, jsonBody(withId(r0, id), stale)),
    step('PUT', `/${T}?${q({ _id: id })}`, [200], `update ${T} conditional`, jsonBody(withId(r0, id))),
    step('PUT', `/${T}?${q({ _id: ids.missing })}`, [409], `update ${T} conditional 409`, jsonBody(withId(r0, id))),
    step('PUT', `/${T}?${EVERYTHING}`, [412], `update ${T} conditional several 412`, jsonBody(forCreate(r0))),
    step('PATCH', `/${T}/${id}`, [200], `patch ${T}`, patchBody(patch)),
    step('PATCH', `/${T}/${id}`, [422], `patch ${T} failing test 422`, patchBody([{ op: 'test', path: '/id', value: ids.missing }])),
    step('PATCH', `/${T}/${ids.deleted}`, [410], `patch ${T} 410`, patchBody(patch)),
    step('PATCH', `/${T}/${ids.missing}`, [404], `patch ${T} 404`, patchBody(patch)),
    step('PATCH', `/${T}/${id}`, [412], `patch ${T} stale If-Match 412`, patchBody(patch, stale)),
    step('PATCH', `/${T}?${q({ _id: id })}`, [200], `patch ${T} conditional`, patchBody(patch)),
    step('PATCH', `/${T}?${q({ _id: ids.missing })}`, [404], `patch ${T} conditional 404`, patchBody(patch)),
    step('PATCH', `/${T}?${EVERYTHING}`, [412], `patch ${T} conditional several 412`, patchBody(patch)),
    step('DELETE', `/${T}/${ids.victim}`, [200], `delete ${T}`),
    step('DELETE', `/${T}/${ids.deleted}`, [200], `delete ${T} already deleted`),
    step('DELETE', `/${T}?${q({ _id: ids.victim })}`, [200], `delete ${T} conditional`),
  ];
}

function bundleOf(type: 'batch' | 'transaction', entry: Json[]): Json {
  return { resourceType: 'Bundle', type, entry };
}

function opsTypeSteps(c: TypeContext): Step[] {
  const { type: T, id, ids, r0 } = c;
  const batch = bundleOf('batch', [
    { request: { method: 'GET', url: `${T}/${id}` } },
    { request: { method: 'GET', url: `${T}/${ids.missing}` } },
    { request: { method: 'GET', url: `${T}/${ids.deleted}` } },
    { request: { method: 'GET', url: `${T}?${q({ _id: id })}` } },
    { request: { method: 'POST', url: T }, resource: forCreate(r0) },
    { request: { method: 'PUT', url: `${T}/${id}` }, resource: withId(r0, id) },
    { request: { method: 'PUT', url: `${T}/${id}`, ifMatch: 'W/"1"' }, resource: withId(r0, id) },
    { request: { method: 'PUT', url: `${T}?${q({ _id: ids.missing })}` }, resource: withId(r0, id) },
  ]);
  const patchFailing = bundleOf('transaction', [
    {
      request: { method: 'PATCH', url: `${T}/${id}` },
      resource: {
        resourceType: 'Binary',
        contentType: JSON_PATCH,
        data: Buffer.from(JSON.stringify([{ op: 'test', path: '/id', value: ids.missing }])).toString('base64'),
      },
    },
  ]);
  return [
    step('POST', '/', [200], `batch ${T} mixed entries (404, 410, 412, 409 inside)`, jsonBody(batch)),
    step(
      'POST',
      '/',
      [200],
      `transaction ${T} create and update`,
      jsonBody(
        bundleOf('transaction', [
          { fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000001', request: { method: 'POST', url: T }, resource: forCreate(r0) },
          { request: { method: 'PUT', url: `${T}/${id}` }, resource: withId(r0, id) },
        ]),
      ),
    ),
    step('POST', '/', [412], `transaction ${T} stale If-Match 412`, jsonBody(bundleOf('transaction', [{ request: { method: 'PUT', url: `${T}/${id}`, ifMatch: 'W/"1"' }, resource: withId(r0, id) }]))),
    step(
      'POST',
      '/',
      [412],
      `transaction ${T} conditional update several 412`,
      jsonBody(bundleOf('transaction', [{ request: { method: 'PUT', url: `${T}?${EVERYTHING}` }, resource: forCreate(r0) }])),
    ),
    step('POST', '/', [422], `transaction ${T} failing patch`, jsonBody(patchFailing)),
    step('POST', `/${T}/$validate`, [200], `$validate ${T}`, jsonBody(forCreate(r0))),
    step(
      'POST',
      `/${T}/$validate`,
      [200],
      `$validate ${T} Parameters`,
      jsonBody({
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: forCreate(r0) },
          { name: 'mode', valueCode: 'create' },
        ],
      }),
    ),
    step('POST', `/${T}/${id}/$validate`, [200], `$validate ${T} instance`, jsonBody(withId(r0, id))),
  ];
}

function opsGlobalSteps(data: Dataset): Step[] {
  const out: Step[] = data.bundles.map((b) => step('POST', '/', [200], `transaction ${b.file} (${b.put.entry.length} entries)`, jsonBody(b.put)));
  const smallest = [...data.bundles].filter((b) => !b.file.startsWith('practitioner')).sort((a, b) => a.bytes - b.bytes)[0];
  if (smallest) out.push(step('POST', '/', [200], `transaction ${smallest.file} as published (server-assigned ids)`, jsonBody(smallest.original)));
  const anyPatient = data.patients[0];
  out.push(
    step(
      'POST',
      '/',
      [404],
      'transaction conditional reference matching nothing 404',
      jsonBody(
        bundleOf('transaction', [{ request: { method: 'POST', url: 'Basic' }, resource: { resourceType: 'Basic', code: { text: 'x' }, subject: { reference: 'Patient?identifier=urn:fg|nobody' } } }]),
      ),
    ),
  );
  out.push(
    step(
      'POST',
      '/',
      [412],
      'transaction conditional reference matching several 412',
      jsonBody(bundleOf('transaction', [{ request: { method: 'POST', url: 'Basic' }, resource: { resourceType: 'Basic', code: { text: 'x' }, subject: { reference: `Patient?${EVERYTHING}` } } }])),
    ),
  );
  for (const p of data.patients) out.push(step('GET', `/Patient/${p}/$everything?_count=200`, [200], 'Patient $everything paged', { pages: 50 }));
  if (anyPatient) out.push(step('GET', `/Patient/${fixtureIds('Patient').missing}/$everything`, [404], 'Patient $everything 404'));
  return out;
}

function systemSteps(): Step[] {
  return [step('GET', '/metadata', [200], 'capabilities'), step('GET', '/_history?_count=50', [200], 'history-system paged', { pages: 3 })];
}

/** The tier the policy sends a step to, or null (denied, or not a FHIR interaction). */
export function routedTier(policy: Policy, s: Step, base = '/fhir'): string | null {
  const qi = s.path.indexOf('?');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers ?? {})) headers[k.toLowerCase()] = v;
  const form = headers['content-type'] === 'application/x-www-form-urlencoded' && typeof s.body === 'string' ? s.body : undefined;
  try {
    const i = classify({
      method: s.method,
      path: qi < 0 ? s.path : s.path.slice(0, qi),
      query: qi < 0 ? '' : s.path.slice(qi + 1),
      headers,
      body: form === undefined ? s.body : undefined,
      form,
      base,
    });
    return policy.decide(i).name;
  } catch (err) {
    if (err instanceof FhirError) return null;
    throw err;
  }
}

export interface DefaultWorkloadOptions {
  /** At most this many resource types (in name order); default all in the data. */
  maxTypes?: number;
}

/** Every candidate step for the data, before the policy has its say. */
export function candidateSteps(data: Dataset, o: DefaultWorkloadOptions = {}): Step[] {
  const types = [...data.byType.keys()].sort().slice(0, o.maxTypes);
  const out: Step[] = [...systemSteps()];
  for (const T of types) {
    const samples = data.byType.get(T)!;
    const sample = samples[0];
    const r0 = literalCopy(sample, data.refs);
    const c: TypeContext = { type: T, sample, r0, id: sample.id, patient: patientOf(r0), ids: fixtureIds(T) };
    out.push(...readSteps(c), ...writeSteps(c), ...opsTypeSteps(c));
  }
  out.push(...opsGlobalSteps(data));
  return out;
}

/** The default workload of `tier`: the candidates the policy routes to it, in recording order
 * for the recording half and in a fixed other order for the held-out half. */
export function defaultWorkload(data: Dataset, policy: Policy, tier: string, o: DefaultWorkloadOptions = {}): Workload {
  const routed = candidateSteps(data, o).map((s) => ({ s, tier: routedTier(policy, s) }));
  const steps = routed.filter((r) => r.tier === tier).map((r) => r.s);
  // The other tiers' traffic, light steps only: whole corpus transactions would only slow it.
  const background = routed.filter((r) => r.tier !== null && r.tier !== tier && JSON.stringify(r.s.body ?? '').length < BACKGROUND_MAX_BODY).map((r) => r.s);
  const patients = data.patients.length;
  return {
    name: `synthea ${data.half} half (${patients} patients, ${data.byType.size} resource types)`,
    tier,
    setup: setupSteps(data),
    steps: data.half === 'holdout' ? shuffled(steps, HOLDOUT_SEED) : steps,
    background: data.half === 'holdout' ? shuffled(background, HOLDOUT_SEED + 1) : background,
  };
}
