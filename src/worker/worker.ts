// One reference FHIR worker process: the shared SQLite database (read-only or writable),
// the REST handlers, an HTTP listener. Everything it needs from disk is read here, at start;
// serving touches only the database file (and, in write mode, its rollback journal).

import type { Logger } from 'pino';
import { loadSearchParameters } from '../fhir/search-parameters';
import { loadFhirDefinitions, patientCompartment } from './fhir-definitions';
import { createWorkerServer } from './http/server';
import { loadIndexedParams } from './indexing/params';
import { listen, parseListen } from './listen';
import { capabilityStatement } from './rest/capabilities';
import type { WorkerContext } from './rest/handler-context';
import { openDatabase } from './storage/open';
import { ResourceStore } from './storage/store';

export interface WorkerOptions {
  db: string;
  listen: string;
  readOnly: boolean;
  log: Logger;
}

export interface RunningWorker {
  /** `unix:/path` or `host:port` as bound. */
  address: string;
  /** Stops accepting, lets in-flight requests finish, closes the database. */
  close(): Promise<void>;
}

/** How long a graceful stop waits for in-flight requests before cutting connections. */
const DRAIN_TIMEOUT_MS = 10_000;

export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  const address = parseListen(o.listen);
  loadFhirDefinitions();
  loadSearchParameters();
  loadIndexedParams();
  const db = openDatabase(o.db, { readOnly: o.readOnly });
  const ctx: WorkerContext = { store: new ResourceStore(db, o.readOnly), readOnly: o.readOnly, patientCompartment: patientCompartment() };
  const capabilities = JSON.stringify(capabilityStatement(o.readOnly, new Date()));
  const ws = createWorkerServer({ ctx, log: o.log, capabilities: () => capabilities });
  let bound: string;
  try {
    bound = await listen(ws.server, address);
  } catch (err) {
    db.close();
    throw err;
  }
  o.log.info({ db: o.db, listen: bound, readOnly: o.readOnly }, 'worker ready');

  let closing: Promise<void> | undefined;
  return {
    address: bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        ws.markClosing();
        const force = setTimeout(() => ws.server.closeAllConnections(), DRAIN_TIMEOUT_MS);
        ws.server.close(() => {
          clearTimeout(force);
          db.close();
          o.log.info('worker stopped');
          resolve();
        });
        ws.server.closeIdleConnections();
      });
      return closing;
    },
  };
}
