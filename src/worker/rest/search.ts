// search-type (GET and POST `_search`) and Patient compartment searches.

import { refuse } from '../../fhir/outcome';
import { ID_RE } from '../indexing/references';
import { parseSearch } from '../search/parse';
import type { Condition } from '../search/query';
import { runSearch } from '../search/run';
import { searchsetBundle } from './result-bundles';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';

function respond(w: WorkerContext, req: FhirRequest, type: string, url: string, params: [string, string][], extra: Condition[] = []): FhirResponse {
  const search = parseSearch(type, params);
  const result = runSearch(w.store, search, extra);
  const links = { url, params: search.linkParams, offset: search.offset, count: search.count, hasNext: result.hasNext };
  return { status: 200, body: searchsetBundle(req.base, result.matches, result.included, result.total, links, search.elements) };
}

export function search(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  return respond(w, req, type, `${req.base}/${type}`, req.query);
}

/** POST [type]/_search: the form body's parameters and the URL's, together. */
export function searchByPost(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  const form = (req.body as [string, string][] | undefined) ?? [];
  return respond(w, req, type, `${req.base}/${type}`, [...req.query, ...form]);
}

/** GET Patient/[id]/[type]: a search of type restricted to the patient's compartment. */
export function compartmentSearch(w: WorkerContext, req: FhirRequest, compartmentType: string, id: string, type: string): FhirResponse {
  if (compartmentType !== 'Patient') {
    throw refuse(404, 'not-supported', 'not-supported', `only the Patient compartment is supported, not ${compartmentType}`);
  }
  if (!ID_RE.test(id)) throw refuse(400, 'bad-id', 'invalid', `'${id}' is not a FHIR id`);
  const params = w.patientCompartment.get(type);
  if (!params && type !== 'Patient') throw refuse(404, 'not-in-compartment', 'not-supported', `${type} is not in the Patient compartment`);
  const cond: Condition = { kind: 'compartment', params: params ?? [], type: 'Patient', id, self: type === 'Patient' };
  return respond(w, req, type, `${req.base}/Patient/${id}/${type}`, req.query, [cond]);
}
