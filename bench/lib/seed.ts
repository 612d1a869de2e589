// The database every variant reads, loaded once before any measured process starts: by a
// reference worker of its own (the loader), so that no measured proxy or worker carries the
// load's heap, caches or compiled code into the measurements. Synthea bundles go in as
// transactions, the shared Practitioner bundle first (patient bundles refer to its
// Practitioners by identifier).

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'undici';
import { spawnLogged, stop, waitFor } from './procs';
import { BIN, ROOT } from './system';

export const SYNTHEA = path.join(ROOT, '..', 'shared', 'corpus', 'synthea');

/** The bundle files, Practitioner bundle first; `patients` limits the patient bundles (smallest first then). */
export function syntheaFiles(patients?: number): string[] {
  const all = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json') && f !== 'index.json');
  const practitioners = all.filter((f) => f.startsWith('practitioner'));
  let rest = all.filter((f) => !f.startsWith('practitioner')).sort();
  if (patients !== undefined) rest = rest.sort((a, b) => size(a) - size(b)).slice(0, patients);
  return [...practitioners, ...rest].map((f) => path.join(SYNTHEA, f));
}

const size = (f: string): number => readFileSync(path.join(SYNTHEA, f)).length;

export interface Loader {
  /** POSTs a FHIR JSON body to the worker (path relative to its root, e.g. / or /Patient). */
  post(path: string, body: string | Buffer): Promise<{ status: number; text: string }>;
}

/** Runs `fn` with a write worker of its own on `db` (created if missing), stopped afterwards. */
export async function withLoader<T>(db: string, dir: string, fn: (l: Loader) => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(db), { recursive: true });
  const socket = path.join(dir, 'loader.sock');
  const child = spawnLogged('loader worker', process.execPath, [BIN, 'worker', '--tier', 'write', '--db', db, '--listen', `unix:${socket}`, '--log-level', 'warn'], { stdout: 'ignore' });
  const client = new Client('http://localhost', { socketPath: socket, headersTimeout: 600_000, bodyTimeout: 600_000 });
  const request = async (method: 'GET' | 'POST', p: string, body?: string | Buffer): Promise<{ status: number; text: string }> => {
    const res = await client.request({ method, path: p, headers: { accept: 'application/fhir+json', ...(body ? { 'content-type': 'application/fhir+json' } : {}) }, body });
    return { status: res.statusCode, text: await res.body.text() };
  };
  try {
    await waitFor('loader worker', async () => {
      if (child.exitCode !== null) throw new Error('the loader worker exited');
      return existsSync(socket) && (await request('GET', '/metadata')).status === 200;
    });
    return await fn({ post: (p, body) => request('POST', p, body) });
  } finally {
    await client.close();
    await stop(child);
  }
}

export interface Seeded {
  /** Server ids of the loaded Patients. */
  patients: string[];
  resources: number;
  seconds: number;
}

/** Loads each file as a transaction. */
export async function seed(l: Loader, files: string[]): Promise<Seeded> {
  const patients: string[] = [];
  let resources = 0;
  const t0 = Date.now();
  for (const f of files) {
    const res = await l.post('/', readFileSync(f));
    if (res.status !== 200) throw new Error(`seeding ${path.basename(f)}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
    for (const e of (JSON.parse(res.text) as { entry: { response: { location: string } }[] }).entry) {
      resources++;
      const m = /^(?:.*\/)?Patient\/([^/]+)\/_history\//.exec(e.response.location);
      if (m) patients.push(m[1]);
    }
  }
  return { patients, resources, seconds: (Date.now() - t0) / 1000 };
}
