// The database every variant reads: Synthea bundles POSTed once as transactions (the shared
// Practitioner bundle first, since patient bundles refer to its Practitioners by identifier).

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './system';

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

export interface Seeded {
  /** Server ids of the loaded Patients. */
  patients: string[];
  resources: number;
  seconds: number;
}

/** POSTs each file to `base` (a FHIR base URL) as a transaction. */
export async function seed(base: string, files: string[]): Promise<Seeded> {
  const patients: string[] = [];
  let resources = 0;
  const t0 = Date.now();
  for (const f of files) {
    const res = await fetch(base.replace(/\/$/, '') + '/', { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: readFileSync(f) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`seeding ${path.basename(f)}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    for (const e of (JSON.parse(text) as { entry: { response: { location: string } }[] }).entry) {
      resources++;
      const m = /^(?:.*\/)?Patient\/([^/]+)\/_history\//.exec(e.response.location);
      if (m) patients.push(m[1]);
    }
  }
  return { patients, resources, seconds: (Date.now() - t0) / 1000 };
}
