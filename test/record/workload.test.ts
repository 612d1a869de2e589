// The default workloads made from the Synthea corpus, under the shipped policy: halves that
// share no patient, every step routed to the tier it is made for, every interaction kind the
// policy gives the tier for every resource type in the data, the worker's error answers, and a
// held-out order that is not the recording's. Plus the JSON format operators write.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { classify } from '../../src/fhir/classify';
import { loadDataset } from '../../src/record/corpus';
import { candidateSteps, defaultWorkload, routedTier } from '../../src/record/default-workloads';
import { loadWorkload, parseWorkload, saveWorkload, shuffled, WorkloadError, type Step } from '../../src/record/workload';
import { loadPolicy } from '../../src/policy';

const REPO = path.resolve(__dirname, '..', '..');
const CORPUS = path.resolve(REPO, '..', 'shared', 'corpus', 'synthea');
const policy = loadPolicy(path.join(REPO, 'profiles', 'policy.yaml'));

const kindOf = (s: Step): string => {
  const q = s.path.indexOf('?');
  const form = s.headers?.['content-type'] === 'application/x-www-form-urlencoded' ? String(s.body) : undefined;
  return classify({
    method: s.method,
    path: q < 0 ? s.path : s.path.slice(0, q),
    query: q < 0 ? '' : s.path.slice(q + 1),
    headers: Object.fromEntries(Object.entries(s.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    body: form === undefined ? s.body : undefined,
    form,
    base: '/fhir',
  }).kind;
};
const typeOf = (s: Step): string => s.path.split(/[/?]/)[1];

describe('the corpus halves', () => {
  const rec = loadDataset(CORPUS, 'recording');
  const held = loadDataset(CORPUS, 'holdout');

  test('split the 20 patients in two, with no patient in both', () => {
    expect(rec.patients.length + held.patients.length).toBe(20);
    expect(rec.patients.length).toBe(10);
    expect(rec.patients.filter((p) => held.patients.includes(p))).toEqual([]);
    const files = (d: typeof rec): string[] => d.bundles.map((b) => b.file).filter((f) => !f.startsWith('practitioner'));
    expect(files(rec).filter((f) => files(held).includes(f))).toEqual([]);
  });

  test('become PUT transactions to the ids of their urn:uuid fullUrls', () => {
    const b = rec.bundles.find((x) => !x.file.startsWith('practitioner'))!;
    expect(b.put.type).toBe('transaction');
    expect(b.put.entry).toHaveLength(b.original.entry.length);
    for (const e of b.put.entry) {
      expect(e.request.method).toBe('PUT');
      expect(e.request.url).toBe(`${e.resource.resourceType}/${e.resource.id}`);
      expect(`urn:uuid:${e.resource.id}`).toBe(e.fullUrl.toLowerCase());
    }
  });

  test('a reduced half keeps the practitioners and the first patients', () => {
    const small = loadDataset(CORPUS, 'recording', { patientsPerHalf: 2 });
    expect(small.patients).toEqual(rec.patients.slice(0, 2));
    expect(small.bundles.some((b) => b.file.startsWith('practitioner'))).toBe(true);
  });
});

describe('default workloads under the shipped policy', () => {
  const data = loadDataset(CORPUS, 'recording', { patientsPerHalf: 3 });
  const types = [...data.byType.keys()].sort();
  const workloads = Object.fromEntries(policy.tiers.map((t) => [t.name, defaultWorkload(data, policy, t.name)]));

  test('every step is routed by the policy to the tier it is made for; the background to the others', () => {
    for (const [tier, w] of Object.entries(workloads)) {
      expect(w.steps.length).toBeGreaterThan(0);
      for (const s of w.steps) expect(routedTier(policy, s)).toBe(tier);
      for (const s of w.background ?? []) expect(routedTier(policy, s)).not.toBe(tier);
    }
  });

  test('the candidates the policy denies (deletes) go to no tier', () => {
    const deletes = candidateSteps(data).filter((s) => s.method === 'DELETE');
    expect(deletes.length).toBe(types.length * 3);
    for (const s of deletes) expect(routedTier(policy, s)).toBeNull();
  });

  test('each tier gets every interaction kind the policy routes to it, for every resource type in the data', () => {
    const expected: Record<string, string[]> = {
      read: ['read', 'vread', 'search-type', 'history-instance', 'history-type'],
      write: ['create', 'update', 'patch'],
      ops: ['batch', 'transaction', 'operation'],
    };
    for (const [tier, kinds] of Object.entries(expected)) {
      const steps = workloads[tier].steps;
      for (const kind of kinds) {
        const covered = new Set(steps.filter((s) => kindOf(s) === kind).map(typeOf));
        if (kind === 'batch' || kind === 'transaction') expect(steps.filter((s) => kindOf(s) === kind).length).toBeGreaterThanOrEqual(types.length);
        else for (const t of types) expect([kind, t, covered.has(t)]).toEqual([kind, t, true]);
      }
    }
    const readKinds = new Set(workloads.read.steps.map(kindOf));
    expect([...readKinds].sort()).toEqual(['capabilities', 'history-instance', 'history-system', 'history-type', 'read', 'search-type', 'vread']);
  });

  test("covers the worker's error answers, paging and large bundles", () => {
    const statuses = (tier: string): Set<number> => new Set(workloads[tier].steps.flatMap((s) => s.expect));
    for (const st of [200, 404, 410]) expect(statuses('read').has(st)).toBe(true);
    for (const st of [201, 404, 409, 410, 412, 422]) expect(statuses('write').has(st)).toBe(true);
    for (const st of [404, 412, 422]) expect(statuses('ops').has(st)).toBe(true);
    expect(workloads.read.steps.some((s) => (s.pages ?? 0) > 0)).toBe(true);
    expect(workloads.read.steps.some((s) => /_count=1000/.test(s.path))).toBe(true);
    // Every corpus bundle of the half goes through the ops tier as a whole transaction.
    const bundles = workloads.ops.steps.filter((s) => ((s.body as { entry?: unknown[] } | undefined)?.entry?.length ?? 0) > 60);
    expect(bundles.length).toBeGreaterThanOrEqual(data.bundles.length);
  });

  test('the set-up loads the half, then makes a deleted, a versioned and a copied resource per type', () => {
    const setup = workloads.read.setup;
    expect(setup.slice(0, data.bundles.length).every((s) => s.method === 'POST' && s.path === '/')).toBe(true);
    for (const t of types) {
      expect(setup.some((s) => s.method === 'DELETE' && s.path === `/${t}/fg-deleted-${t}`)).toBe(true);
      expect(setup.some((s) => s.method === 'PUT' && s.path === `/${t}/fg-copy-${t}`)).toBe(true);
    }
    // One set-up for every tier: it is done once per recording and copied.
    for (const w of Object.values(workloads)) expect(w.setup).toEqual(setup);
  });

  test('the held-out workload uses the other patients, in another order', () => {
    const held = loadDataset(CORPUS, 'holdout', { patientsPerHalf: 3 });
    const h = defaultWorkload(held, policy, 'read');
    const r = workloads.read;
    const ids = (w: typeof r): string => JSON.stringify(w.steps);
    for (const p of data.patients) expect(ids(h)).not.toContain(p);
    const labels = (w: typeof r): string[] => w.steps.map((s) => s.label);
    expect(labels(h)).not.toEqual(labels(r));
    // Same kinds of step, reordered (the held-out half may lack a type or two).
    const common = labels(h).filter((l) => labels(r).includes(l));
    expect(common.length).toBeGreaterThan(labels(h).length * 0.8);
    expect(common).not.toEqual(labels(r).filter((l) => common.includes(l)));
  });
});

describe('workload files', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'fg-workload-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('round-trip through JSON', () => {
    const w = { name: 'mine', tier: 'read', setup: [], steps: [{ method: 'GET', path: '/metadata', expect: [200], label: 'capabilities' }] };
    const file = path.join(dir, 'w.json');
    saveWorkload(file, w);
    expect(loadWorkload(file)).toEqual(w);
  });

  test.each([
    [{ steps: [] }, /tier/],
    [{ tier: 'read', steps: [] }, /non-empty/],
    [{ tier: 'read', steps: [{ method: 'FETCH', path: '/x', expect: [200] }] }, /method/],
    [{ tier: 'read', steps: [{ method: 'GET', path: 'x', expect: [200] }] }, /path/],
    [{ tier: 'read', steps: [{ method: 'GET', path: '/x', expect: [] }] }, /expect/],
    [{ tier: 'read', steps: [{ method: 'GET', path: '/x', expect: [200], pages: -1 }] }, /pages/],
  ])('refuses %j naming the problem', (json, message) => {
    expect(() => parseWorkload(json, 'w.json')).toThrow(WorkloadError);
    expect(() => parseWorkload(json, 'w.json')).toThrow(message);
  });

  test('an unreadable file is a WorkloadError naming it', () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, '{');
    expect(() => loadWorkload(file)).toThrow(/bad\.json/);
  });

  test('the held-out permutation is fixed and is a permutation', () => {
    const xs = Array.from({ length: 50 }, (_, i) => i);
    expect(shuffled(xs, 7)).toEqual(shuffled(xs, 7));
    expect(shuffled(xs, 7)).not.toEqual(xs);
    expect([...shuffled(xs, 7)].sort((a, b) => a - b)).toEqual(xs);
  });
});
