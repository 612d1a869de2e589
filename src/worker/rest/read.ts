// read and vread: the stored JSON text is the response body, unparsed.

import { refuse } from '../../fhir/outcome';
import { ID_RE } from '../indexing/references';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';
import { versionResponse } from './handler-context';

export function gone(type: string, id: string, version?: number) {
  return refuse(410, 'deleted', 'deleted', `${type}/${id} has been deleted${version ? ` (version ${version})` : ''}`);
}

export function notFound(type: string, id: string) {
  return refuse(404, 'not-found', 'not-found', `${type}/${id} is not known`);
}

export function read(w: WorkerContext, req: FhirRequest, type: string, id: string): FhirResponse {
  const cur = w.store.current(type, id);
  if (!cur) throw notFound(type, id);
  if (cur.deleted) throw gone(type, id, cur.version);
  return versionResponse(200, req.base, { type, id, version: cur.version, lastUpdated: cur.lastUpdated }, cur.json!);
}

export function vread(w: WorkerContext, req: FhirRequest, type: string, id: string, vid: string): FhirResponse {
  if (!/^[1-9]\d{0,9}$/.test(vid) || !ID_RE.test(id)) throw notFound(type, `${id}/_history/${vid}`);
  const row = w.store.version(type, id, Number(vid));
  if (!row) {
    if (!w.store.current(type, id)) throw notFound(type, id);
    throw refuse(404, 'not-found', 'not-found', `${type}/${id} has no version ${vid}`);
  }
  if (row.json === null) throw gone(type, id, row.version);
  return versionResponse(200, req.base, { type, id, version: row.version, lastUpdated: row.lastUpdated }, row.json);
}
