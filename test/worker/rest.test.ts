// The worker's REST interactions against a real worker process over its Unix socket:
// versions and history, conditional interactions, patch, batch and transaction (including
// rollback), operations, search features, and every kind of refusal. The cases are shared
// (test/fhir-cases/): the proxy and the enforced system run them too.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restCases } from '../fhir-cases';
import { workerTarget, type FhirTarget } from '../fhir-cases/target';
import { startWorker, stopAllWorkers } from '../helpers/worker-process';

let dir: string;
let target: FhirTarget;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-rest-'));
  const w = await startWorker({ db: join(dir, 'fhir.db') });
  target = workerTarget(w.socket);
}, 120_000);

afterAll(async () => {
  await stopAllWorkers();
  rmSync(dir, { recursive: true, force: true });
});

restCases(() => target);
