// The 21 Synthea bundles of ../shared/corpus/synthea loaded as transactions through a real
// worker process, then checked against the bundles themselves: counts per type, every
// reference resolving, reads equal to what was posted, and searches whose expected results
// are computed here from the bundles (not from the server).

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fhirRequest, REPO_ROOT, startWorker, stopAllWorkers, type WorkerProcess } from '../helpers/worker-process';
import type { Json } from '../helpers/json';

const CORPUS = join(REPO_ROOT, '..', 'shared', 'corpus', 'synthea');

interface Loaded {
  file: string;
  bundle: Json;
  /** fullUrl → `Type/id` assigned by the server. */
  ids: Map<string, string>;
}

let dir: string;
let worker: WorkerProcess;
const loaded: Loaded[] = [];
/** Every loaded resource as read back, by `Type/id`. */
const stored = new Map<string, Json>();

function allPosted(): { entry: Json; ref: string; bundle: Loaded }[] {
  return loaded.flatMap((b) => b.bundle.entry.map((entry: Json) => ({ entry, ref: b.ids.get(entry.fullUrl)!, bundle: b })));
}

/**
 * What the server must store for a posted resource: its id assigned, references resolved
 * within its own bundle (the same Practitioner fullUrl recurs in several bundles, and each
 * transaction creates its own).
 */
function expectedStored(resource: Json, ref: string, urnToRef: Map<string, string>): Json {
  const copy = JSON.parse(JSON.stringify(resource));
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Json;
      for (const [k, x] of Object.entries(o)) {
        if (k === 'reference' && typeof x === 'string' && urnToRef.has(x)) o[k] = urnToRef.get(x);
        else if (k === 'div' && typeof x === 'string') o[k] = x.replace(/urn:uuid:[0-9a-f-]{36}/g, (u) => urnToRef.get(u) ?? u);
        else walk(x);
      }
    }
  };
  walk(copy);
  copy.id = ref.split('/')[1];
  return copy;
}

function withoutServerMeta(resource: Json): Json {
  const copy = JSON.parse(JSON.stringify(resource));
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (!Object.keys(copy.meta).length) delete copy.meta;
  }
  return copy;
}

async function total(query: string): Promise<number> {
  const res = await fhirRequest(worker.socket, 'GET', `/${query}${query.includes('?') ? '&' : '?'}_summary=count`);
  expect(res.status).toBe(200);
  return res.json.total;
}

async function searchAll(query: string): Promise<Json[]> {
  const out: Json[] = [];
  let path: string | undefined = `/${query}`;
  while (path) {
    const res = await fhirRequest(worker.socket, 'GET', path);
    expect(res.status).toBe(200);
    out.push(...(res.json.entry ?? []).filter((e: Json) => e.search.mode === 'match').map((e: Json) => e.resource));
    const next = res.json.link.find((l: Json) => l.relation === 'next')?.url as string | undefined;
    path = next ? next.replace(/^http:\/\/[^/]+/, '') : undefined;
  }
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-synthea-'));
  worker = await startWorker({ db: join(dir, 'fhir.db') });
  const files = readdirSync(CORPUS)
    .filter((f) => f.endsWith('.json') && f !== 'index.json')
    .sort();
  for (const file of files) {
    const text = readFileSync(join(CORPUS, file));
    const res = await fhirRequest(worker.socket, 'POST', '/', text, { 'content-type': 'application/fhir+json' });
    if (res.status !== 200) throw new Error(`${file}: ${res.status} ${res.text.slice(0, 500)}`);
    const bundle = JSON.parse(text.toString('utf8'));
    const ids = new Map<string, string>();
    expect(res.json.type).toBe('transaction-response');
    expect(res.json.entry).toHaveLength(bundle.entry.length);
    bundle.entry.forEach((e: Json, i: number) => {
      const r = res.json.entry[i].response;
      expect(r.status).toBe('201 Created');
      const m = /\/([A-Za-z]+)\/([^/]+)\/_history\/1$/.exec(r.location);
      expect(m?.[1]).toBe(e.resource.resourceType);
      ids.set(e.fullUrl, `${m![1]}/${m![2]}`);
    });
    loaded.push({ file, bundle, ids });
  }
  const types = new Set(allPosted().map((p) => p.entry.resource.resourceType as string));
  for (const type of types) for (const r of await searchAll(`${type}?_count=1000`)) stored.set(`${type}/${r.id}`, r);
}, 300_000);

afterAll(async () => {
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

test('all 21 bundles load, 7,068 entries, each a new resource with its own id', () => {
  expect(loaded).toHaveLength(21);
  const posted = allPosted();
  expect(posted).toHaveLength(7068);
  expect(new Set(posted.map((p) => p.ref)).size).toBe(7068);
});

test('per resource type, the count a search returns equals the count in the bundles', async () => {
  const expected = new Map<string, number>();
  for (const { entry } of allPosted()) expected.set(entry.resource.resourceType, (expected.get(entry.resource.resourceType) ?? 0) + 1);
  expect(expected.size).toBeGreaterThan(10);
  for (const [type, n] of expected) {
    expect({ type, n: await total(type) }).toEqual({ type, n });
    expect({ type, paged: [...stored.keys()].filter((k) => k.startsWith(`${type}/`)).length }).toEqual({ type, paged: n });
  }
});

test('every reference in the loaded data resolves to a loaded resource', async () => {
  const targets = new Map<string, Set<string>>();
  let references = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v as Json)) {
        if (k === 'reference' && typeof x === 'string') {
          if (x.startsWith('#')) continue; // contained
          references++;
          const m = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(x);
          expect({ reference: x, literal: Boolean(m) }).toEqual({ reference: x, literal: true });
          if (!targets.has(m![1])) targets.set(m![1], new Set());
          targets.get(m![1])!.add(m![2]);
        } else walk(x);
      }
    }
  };
  for (const r of stored.values()) walk(r);
  expect(references).toBeGreaterThan(20_000);
  // Resolve through the server, a hundred ids per search.
  for (const [type, ids] of targets) {
    const list = [...ids];
    for (let i = 0; i < list.length; i += 100) {
      const chunk = list.slice(i, i + 100);
      const res = await fhirRequest(worker.socket, 'GET', `/${type}?_id=${chunk.join(',')}&_count=100&_elements=id`);
      expect(res.status).toBe(200);
      const found = new Set((res.json.entry ?? []).map((e: Json) => e.resource.id));
      expect(chunk.filter((id) => !found.has(id)).map((id) => `${type}/${id}`)).toEqual([]);
    }
  }
});

test('a sample of reads returns exactly what was posted (ignoring server-set meta)', async () => {
  const posted = allPosted();
  const sample = posted.filter((_, i) => i % 97 === 0);
  expect(sample.length).toBeGreaterThan(60);
  for (const { entry, ref, bundle } of sample) {
    const res = await fhirRequest(worker.socket, 'GET', `/${ref}`);
    expect(res.status).toBe(200);
    expect(res.json.meta.versionId).toBe('1');
    expect(res.headers.etag).toBe('W/"1"');
    expect(withoutServerMeta(res.json)).toEqual(expectedStored(entry.resource, ref, bundle.ids));
  }
});

describe('searches agree with the bundles', () => {
  const resources = (type: string): Json[] =>
    allPosted()
      .filter((p) => p.entry.resource.resourceType === type)
      .map((p) => p.entry.resource);

  test('token: Observation by LOINC code, with and without system', async () => {
    const codes = new Map<string, number>();
    for (const o of resources('Observation')) {
      for (const c of o.code.coding ?? []) if (c.system === 'http://loinc.org') codes.set(c.code, (codes.get(c.code) ?? 0) + 1);
    }
    const top = [...codes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
    for (const [code, n] of top) {
      expect(await total(`Observation?code=http://loinc.org|${code}`)).toBe(n);
      expect(await total(`Observation?code=${code}`)).toBe(n);
    }
    expect(await total('Observation?code=http://snomed.info/sct|' + top[0][0])).toBe(0);
  });

  test('token and date on Patient: gender, birthdate', async () => {
    const patients = resources('Patient');
    expect(await total('Patient?gender=female')).toBe(patients.filter((p) => p.gender === 'female').length);
    expect(await total('Patient?birthdate=lt1970-01-01')).toBe(patients.filter((p) => p.birthDate < '1970-01-01').length);
    const b = patients[0].birthDate as string;
    expect(await total(`Patient?birthdate=${b}`)).toBe(patients.filter((p) => p.birthDate === b).length);
    expect(await total(`Patient?birthdate=${b.slice(0, 4)}`)).toBe(patients.filter((p) => p.birthDate.startsWith(b.slice(0, 4))).length);
  });

  test('string: family name prefixes, case- and accent-insensitive', async () => {
    const patients = resources('Patient');
    const family = patients[3].name[0].family as string;
    const prefix = family.slice(0, 3);
    const norm = (s: string): string => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
    const expected = patients.filter((p) => p.name.some((n: Json) => norm(n.family ?? '').startsWith(norm(prefix)))).length;
    expect(expected).toBeGreaterThan(0);
    expect(await total(`Patient?family=${encodeURIComponent(prefix.toUpperCase())}`)).toBe(expected);
    expect(await total(`Patient?family:exact=${encodeURIComponent(family)}`)).toBe(patients.filter((p) => p.name.some((n: Json) => n.family === family)).length);
  });

  test("reference: each patient's Observations, by reference and by chain", async () => {
    for (const b of loaded.slice(0, 6)) {
      const patientEntry = b.bundle.entry.find((e: Json) => e.resource.resourceType === 'Patient');
      if (!patientEntry) continue;
      const ref = b.ids.get(patientEntry.fullUrl)!;
      const n = b.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Observation').length;
      expect(await total(`Observation?subject=${ref}`)).toBe(n);
      expect(await total(`Observation?patient=${ref.split('/')[1]}`)).toBe(n);
      const family = patientEntry.resource.name[0].family;
      const sameFamily = loaded.filter((x) => x.bundle.entry.some((e: Json) => e.resource.resourceType === 'Patient' && e.resource.name[0].family === family));
      const chained = sameFamily.reduce((s, x) => s + x.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Observation').length, 0);
      expect(await total(`Observation?subject:Patient.family:exact=${encodeURIComponent(family)}`)).toBe(chained);
    }
  });

  test('quantity: Observation values above a threshold', async () => {
    const obs = resources('Observation');
    for (const threshold of [10, 100]) {
      const expected = obs.filter((o) => typeof o.valueQuantity?.value === 'number' && o.valueQuantity.value > threshold).length;
      expect(expected).toBeGreaterThan(0);
      expect(await total(`Observation?value-quantity=gt${threshold}`)).toBe(expected);
    }
  });

  test('_include, _revinclude and _sort on one patient', async () => {
    const b = loaded.find((x) => x.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Encounter').length > 5)!;
    const patientEntry = b.bundle.entry.find((e: Json) => e.resource.resourceType === 'Patient');
    const patientRef = b.ids.get(patientEntry.fullUrl)!;
    const encounters = b.bundle.entry.filter((e: Json) => e.resource.resourceType === 'Encounter').map((e: Json) => e.resource);
    const providers = new Set(encounters.map((e: Json) => b.ids.get(e.serviceProvider.reference)));

    const inc = await fhirRequest(worker.socket, 'GET', `/Encounter?subject=${patientRef}&_count=1000&_include=Encounter:service-provider`);
    expect(inc.status).toBe(200);
    const included = inc.json.entry.filter((e: Json) => e.search.mode === 'include').map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`);
    expect(new Set(included)).toEqual(providers);
    expect(inc.json.entry.filter((e: Json) => e.search.mode === 'match')).toHaveLength(encounters.length);

    const rev = await fhirRequest(worker.socket, 'GET', `/Patient?_id=${patientRef.split('/')[1]}&_revinclude=Encounter:subject`);
    expect(rev.json.entry.filter((e: Json) => e.search.mode === 'include')).toHaveLength(encounters.length);

    const sorted = await searchAll(`Encounter?subject=${patientRef}&_sort=-date&_count=7`);
    expect(sorted).toHaveLength(encounters.length);
    const starts = sorted.map((e) => Date.parse(e.period.end ?? e.period.start));
    expect(starts).toEqual([...starts].sort((x, y) => y - x));
  });

  test("Patient/$everything holds every resource of the patient's bundle", async () => {
    const b = loaded.find((x) => x.file.startsWith('Clemente'))!;
    const patientEntry = b.bundle.entry.find((e: Json) => e.resource.resourceType === 'Patient');
    const id = b.ids.get(patientEntry.fullUrl)!.split('/')[1];
    const res = await fhirRequest(worker.socket, 'GET', `/Patient/${id}/$everything?_count=1000`);
    expect(res.status).toBe(200);
    const got = new Set(res.json.entry.map((e: Json) => `${e.resource.resourceType}/${e.resource.id}`));
    expect([...b.ids.values()].filter((ref) => !got.has(ref))).toEqual([]);
    expect(res.json.total).toBe(got.size);
  });
});
