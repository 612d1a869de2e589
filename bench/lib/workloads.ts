// The benchmark's FHIR workloads, each a list of requests that connections cycle through,
// relative to a FHIR base, built from the seeded database and the Synthea corpus:
//   read         GET Patient/<id> over the loaded Patients
//   search       Observation?patient=<id>&code=<LOINC>&_sort=-date&_count=20 (vital signs every patient has)
//   create       POST Patient and POST Observation (a Synthea Patient and a vital sign), alternating
//   transaction  POST of one Synthea patient bundle (fewer, larger requests: fewer connections)
// `tier` is the tier the shipped policy routes the workload to: where direct and bare send it.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SYNTHEA, type Loader } from './seed';

export type WorkloadName = 'read' | 'search' | 'create' | 'transaction';
export const WORKLOADS: WorkloadName[] = ['read', 'search', 'create', 'transaction'];

export interface WorkloadRequest {
  method: 'GET' | 'POST';
  /** Relative to the FHIR base, starting with '/'. */
  path: string;
  body?: string;
}

export interface Workload {
  name: WorkloadName;
  describe: string;
  tier: 'read' | 'write' | 'ops';
  connections: number;
  requests: WorkloadRequest[];
}

/** The smallest patient bundle of the corpus: the transaction workload's body. */
export const TRANSACTION_BUNDLE = path.join(SYNTHEA, 'Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json');

const VITAL_SIGNS = ['8302-2', '29463-7', '39156-5', '8867-4', '72514-3']; // height, weight, BMI, heart rate, pain

interface Entry {
  resource: { resourceType: string; id?: string; [k: string]: unknown };
}

function createBodies(bundle: { entry: Entry[] }, patientId: string): WorkloadRequest[] {
  const patient = { ...bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource };
  delete patient.id;
  const obs = { ...bundle.entry.find((e) => e.resource.resourceType === 'Observation')!.resource };
  delete obs.id;
  delete obs.encounter; // a urn:uuid inside the bundle: meaningless outside it
  obs.subject = { reference: `Patient/${patientId}` };
  return [
    { method: 'POST', path: '/Patient', body: JSON.stringify(patient) },
    { method: 'POST', path: '/Observation', body: JSON.stringify(obs) },
  ];
}

/** A Patient of its own for the created Observations to point at (its id). */
export async function createSubject(l: Loader): Promise<string> {
  const res = await l.post('/Patient', JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Bench', given: ['Create'] }] }));
  if (res.status !== 201) throw new Error(`creating the create workload's subject: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  return (JSON.parse(res.text) as { id: string }).id;
}

/**
 * `patients`: the seeded Patients (read and searched); `createSubject`: a Patient of its own
 * that the created Observations point at, so that they do not grow what the searches sort.
 */
export function buildWorkloads(patients: string[], createSubject: string, o: { connections: number; transactionConnections: number }): Record<WorkloadName, Workload> {
  if (!patients.length) throw new Error('no Patient was loaded: nothing to read');
  const text = readFileSync(TRANSACTION_BUNDLE, 'utf8');
  const bundle = JSON.parse(text) as { entry: Entry[] };
  const search: WorkloadRequest[] = [];
  for (const code of VITAL_SIGNS) for (const id of patients) search.push({ method: 'GET', path: `/Observation?patient=${id}&code=http://loinc.org|${code}&_sort=-date&_count=20` });
  return {
    read: { name: 'read', describe: 'GET Patient/<id>', tier: 'read', connections: o.connections, requests: patients.map((id) => ({ method: 'GET', path: `/Patient/${id}` })) },
    search: { name: 'search', describe: 'GET Observation?patient&code&_sort=-date&_count=20', tier: 'read', connections: o.connections, requests: search },
    create: { name: 'create', describe: 'POST Patient / POST Observation (validated by fhirguard)', tier: 'write', connections: o.connections, requests: createBodies(bundle, createSubject) },
    transaction: {
      name: 'transaction',
      describe: `POST a Synthea transaction (${path.basename(TRANSACTION_BUNDLE).split('_').slice(0, 2).join(' ')}, ${bundle.entry.length} entries)`,
      tier: 'ops',
      connections: o.transactionConnections,
      requests: [{ method: 'POST', path: '/', body: text }],
    },
  };
}
