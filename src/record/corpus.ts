// The Synthea corpus as recording data: the patient bundles split in two halves (one for
// recording, the other held out for the proof of completeness), each bundle rewritten as a
// transaction of PUTs to ids taken from its urn:uuid fullUrls. Known ids let a workload name
// resources before the server has seen them, so the same workload runs the same way on any
// fresh database: no step depends on an id the server picked in an earlier run.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type Half = 'recording' | 'holdout';

export interface CorpusBundle {
  file: string;
  /** The bundle as PUT entries to `Type/<uuid>` (a transaction, ids known in advance). */
  put: Json;
  /** The bundle as published (POST entries, the server assigns ids). */
  original: Json;
  /** Serialized sizes, for the report. */
  bytes: number;
}

export interface SampleResource {
  type: string;
  id: string;
  /** The resource as stored (id set; references still urn:uuid, the server rewrites them). */
  resource: Json;
}

export interface Dataset {
  half: Half;
  bundles: CorpusBundle[];
  /** Every resource of the half by type, in file then entry order. */
  byType: Map<string, SampleResource[]>;
  /** Patient ids of the half, in file order. */
  patients: string[];
  /** urn:uuid fullUrl → `Type/id`, for turning a sample's references into literal ones. */
  refs: Map<string, string>;
}

function uuidOf(fullUrl: unknown): string | undefined {
  const m = typeof fullUrl === 'string' ? /^urn:uuid:([0-9a-fA-F-]{36})$/.exec(fullUrl) : null;
  return m ? m[1].toLowerCase() : undefined;
}

function toPutTransaction(bundle: Json, refs: Map<string, string>, file: string): Json {
  const entry = (bundle.entry as Json[]).map((e, i) => {
    const type = e.resource?.resourceType;
    const id = uuidOf(e.fullUrl);
    if (typeof type !== 'string' || !id) throw new Error(`${file}: entry ${i} has no urn:uuid fullUrl or resource type`);
    refs.set(e.fullUrl, `${type}/${id}`);
    return { fullUrl: e.fullUrl, resource: { ...e.resource, id }, request: { method: 'PUT', url: `${type}/${id}` } };
  });
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

export interface LoadOptions {
  /** Patient bundles per half (default: all of the half). */
  patientsPerHalf?: number;
}

/**
 * The patient bundles sorted by file name, alternately in each half (even positions record,
 * odd ones are held out), plus the shared practitioner bundles in both halves.
 */
export function loadDataset(corpusDir: string, half: Half, o: LoadOptions = {}): Dataset {
  const files = readdirSync(corpusDir)
    .filter((f) => f.endsWith('.json') && f !== 'index.json')
    .sort();
  const shared = files.filter((f) => f.startsWith('practitionerInformation'));
  const patientFiles = files.filter((f) => !shared.includes(f)).filter((_, i) => (i % 2 === 0) === (half === 'recording'));
  const chosen = [...shared, ...patientFiles.slice(0, o.patientsPerHalf ?? patientFiles.length)];
  if (patientFiles.length === 0) throw new Error(`${corpusDir}: no Synthea patient bundles`);
  const refs = new Map<string, string>();
  const byType = new Map<string, SampleResource[]>();
  const patients: string[] = [];
  const bundles = chosen.map((file) => {
    const text = readFileSync(path.join(corpusDir, file), 'utf8');
    const original = JSON.parse(text) as Json;
    if (original.resourceType !== 'Bundle' || !Array.isArray(original.entry)) throw new Error(`${file}: not a Bundle with entries`);
    const put = toPutTransaction(original, refs, file);
    for (const e of put.entry as Json[]) {
      const r = e.resource as Json;
      const list = byType.get(r.resourceType) ?? [];
      list.push({ type: r.resourceType, id: r.id, resource: r });
      byType.set(r.resourceType, list);
      if (r.resourceType === 'Patient') patients.push(r.id);
    }
    return { file, put, original, bytes: Buffer.byteLength(text) };
  });
  return { half, bundles, byType, patients, refs };
}

/** A copy of a sample with its urn:uuid references made literal (`Type/id`), for requests
 * outside a transaction, where no fullUrl can resolve them. */
export function literalCopy(sample: SampleResource, refs: ReadonlyMap<string, string>): Json {
  const text = JSON.stringify(sample.resource).replace(/urn:uuid:[0-9a-fA-F-]{36}/g, (u) => refs.get(u) ?? u);
  return JSON.parse(text) as Json;
}
