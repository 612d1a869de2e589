// The operations the worker implements: `$validate` (type and instance level) and
// `Patient/[id]/$everything`. Anything else is a 404 naming the operation.

import { refuse } from '../../fhir/outcome';
import type { Issue } from '../../fhir/outcome';
import { ID_RE } from '../indexing/references';
import type { Json } from '../storage/store';
import { searchsetBundle } from './result-bundles';
import { type FhirRequest, type FhirResponse, type WorkerContext, info, outcomeBody } from './handler-context';
import { parsePaging } from './paging';
import { gone, notFound } from './read';
import { validationIssues } from './resource-checks';

/** Operation name → levels it is implemented at, and for which types ('*' = all). */
export const OPERATIONS = {
  validate: { name: '$validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate', types: '*' },
  everything: { name: '$everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything', types: ['Patient'] },
} as const;

type Parameter = { name?: string; resource?: Json; valueCode?: string; valueUri?: string; valueString?: string };

function validateInput(req: FhirRequest): { resource?: Json; mode: string } {
  const body = req.body as Json | undefined;
  if (body === undefined) return { mode: 'create' };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw refuse(400, 'bad-operation', 'invalid', '$validate needs a resource or Parameters body');
  if (body.resourceType !== 'Parameters') return { resource: body, mode: 'create' };
  let resource: Json | undefined;
  let mode = 'create';
  for (const p of (Array.isArray(body.parameter) ? body.parameter : []) as Parameter[]) {
    if (p.name === 'resource') resource = p.resource;
    else if (p.name === 'mode') mode = p.valueCode ?? p.valueString ?? mode;
    else if (p.name === 'profile') throw refuse(400, 'not-supported', 'not-supported', '$validate against a profile is not supported (the base R4 definitions are used)');
    else throw refuse(400, 'bad-operation', 'invalid', `$validate has no parameter '${String(p.name)}'`);
  }
  if (!['create', 'update', 'delete'].includes(mode)) throw refuse(400, 'bad-operation', 'invalid', `$validate mode '${mode}' is not create, update or delete`);
  return { ...(resource ? { resource } : {}), mode };
}

export function validate(w: WorkerContext, req: FhirRequest, type: string, id?: string): FhirResponse {
  const input = validateInput(req);
  let resource = input.resource;
  if (id !== undefined) {
    const cur = w.store.current(type, id);
    if (input.mode === 'delete') {
      if (!cur) throw notFound(type, id);
      if (cur.deleted) throw gone(type, id, cur.version);
      return { status: 200, body: outcomeBody([info(`${type}/${id} can be deleted`)]) };
    }
    if (!resource) {
      if (!cur) throw notFound(type, id);
      if (cur.deleted) throw gone(type, id, cur.version);
      resource = JSON.parse(cur.json!) as Json;
    }
  }
  if (!resource || typeof resource !== 'object') throw refuse(400, 'bad-operation', 'required', '$validate needs the resource to validate');
  if (resource.resourceType !== type) {
    throw refuse(400, 'wrong-type', 'invalid', `resource type '${String(resource.resourceType)}' is not the URL's type '${type}'`);
  }
  const issues: Issue[] = [];
  if (id !== undefined && resource.id !== id) {
    issues.push({ severity: 'error', code: 'invalid', diagnostics: `the resource's id '${String(resource.id)}' is not '${id}'`, expression: [`${type}.id`] });
  }
  if (input.mode === 'update' && id === undefined && resource.id === undefined) {
    issues.push({ severity: 'error', code: 'required', diagnostics: 'an update needs the resource id', expression: [`${type}.id`] });
  }
  issues.push(...validationIssues(resource));
  // The operation succeeded whether or not the resource is valid: its verdict is the outcome.
  return { status: 200, body: outcomeBody(issues.length ? issues : [info('no issues found')]) };
}

export function everything(w: WorkerContext, req: FhirRequest, id: string): FhirResponse {
  const { count, offset, linkParams } = parsePaging(req.query, '$everything');
  if (!ID_RE.test(id)) throw notFound('Patient', id);
  const patient = w.store.current('Patient', id);
  if (!patient) throw notFound('Patient', id);
  if (patient.deleted) throw gone('Patient', id, patient.version);
  const rids = [patient.rid, ...compartmentRids(w, id)];
  const seen = new Set(rids);
  for (const rid of referencedRids(w, rids)) {
    if (!seen.has(rid)) {
      seen.add(rid);
      rids.push(rid);
    }
  }
  const page = w.store.rows(rids.slice(offset, offset + count));
  const links = { url: `${req.base}/Patient/${id}/$everything`, params: linkParams, offset, count, hasNext: offset + count < rids.length };
  return { status: 200, body: searchsetBundle(req.base, page, [], rids.length, links) };
}

/** Resources linked to Patient/id through the parameters of the Patient CompartmentDefinition. */
function compartmentRids(w: WorkerContext, id: string): number[] {
  const rows = w.store.prepare("SELECT DISTINCT rid, type, code FROM idx_reference WHERE target_type = 'Patient' AND target_id = ? ORDER BY rid").all(id) as {
    rid: number;
    type: string;
    code: string;
  }[];
  const out: number[] = [];
  const seen = new Set<number>();
  for (const r of rows) {
    if (!seen.has(r.rid) && w.patientCompartment.get(r.type)?.includes(r.code)) {
      seen.add(r.rid);
      out.push(r.rid);
    }
  }
  return out;
}

/** Resources the given ones refer to through reference parameters (one hop). */
function referencedRids(w: WorkerContext, rids: readonly number[]): number[] {
  const rows = w.store
    .prepare(
      `SELECT DISTINCT t.rid FROM idx_reference x JOIN resources t ON t.type = x.target_type AND t.id = x.target_id
       WHERE x.rid IN (SELECT value FROM json_each(?)) AND t.deleted = 0 ORDER BY t.rid`,
    )
    .all(JSON.stringify(rids)) as { rid: number }[];
  return rows.map((r) => r.rid);
}
