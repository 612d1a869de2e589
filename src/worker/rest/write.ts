// create, update, patch and delete, plain and conditional. Each runs in one IMMEDIATE
// transaction (a savepoint inside a transaction bundle), so a conditional interaction's
// search and its write see the same database even with other writer processes.

import { randomUUID } from 'node:crypto';
import { applyPatch, type Operation } from 'rfc6902';
import { FhirError, refuse } from '../../fhir/outcome';
import { ID_RE } from '../indexing/references';
import { conditionalMatches } from '../search/run';
import type { CurrentRow, Json, WriteResult } from '../storage/store';
import { type FhirRequest, type FhirResponse, type WorkerContext, info, outcomeBody, parseETag, versionResponse } from './handler-context';
import { gone, notFound } from './read';
import { checkResource } from './resource-checks';

/** The response to a successful write, shaped by the Prefer header. */
export function writeResponse(req: FhirRequest, type: string, id: string, result: WriteResult, status: number, message: string): FhirResponse {
  const v = { type, id, version: result.version, lastUpdated: result.lastUpdated };
  const body = req.prefer === 'minimal' ? undefined : req.prefer === 'OperationOutcome' || result.json === null ? outcomeBody([info(message)]) : result.json;
  const res = versionResponse(status, req.base, v, body);
  if (status === 201) res.headers!.Location = res.headers!['Content-Location'];
  return res;
}

function checkIfMatch(req: FhirRequest, type: string, id: string, cur: CurrentRow | undefined): void {
  const expected = parseETag(req.headers['if-match']);
  if (expected === undefined) return;
  if (!cur || cur.deleted || String(cur.version) !== expected) {
    const actual = !cur ? 'does not exist' : cur.deleted ? 'is deleted' : `is at version ${cur.version}`;
    throw refuse(412, 'version-conflict', 'conflict', `If-Match: ${type}/${id} ${actual}, not version ${expected}`);
  }
}

function multipleMatches(type: string): FhirError {
  return refuse(412, 'multiple-matches', 'multiple-matches', `the criteria match more than one ${type}`);
}

export function create(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  const resource = checkResource(req.body, type);
  return w.store.transaction(() => {
    const ifNoneExist = req.headers['if-none-exist'];
    if (ifNoneExist !== undefined) {
      const query = [...new URLSearchParams(String(ifNoneExist).replace(/^[^?]*\?/, ''))];
      const found = conditionalMatches(w.store, type, query);
      if (found.length > 1) throw multipleMatches(type);
      if (found.length === 1) {
        const cur = w.store.current(type, found[0].id)!;
        const result: WriteResult = { rid: cur.rid, version: cur.version, lastUpdated: cur.lastUpdated, json: cur.json, created: false };
        return writeResponse(req, type, found[0].id, result, 200, `${type}/${found[0].id} matches If-None-Exist; nothing created`);
      }
    }
    const id = req.assignedId ?? randomUUID();
    const result = w.store.put(type, id, resource, 'POST');
    return writeResponse(req, type, id, result, 201, `created ${type}/${id}`);
  });
}

export function update(w: WorkerContext, req: FhirRequest, type: string, id: string): FhirResponse {
  const resource = checkResource(req.body, type);
  if (resource.id !== id) {
    throw refuse(400, 'id-mismatch', 'invalid', resource.id === undefined ? `update of ${type}/${id} needs the body's id` : `body id '${String(resource.id)}' does not match the URL's id '${id}'`, [
      `${type}.id`,
    ]);
  }
  return w.store.transaction(() => {
    const cur = w.store.current(type, id);
    checkIfMatch(req, type, id, cur);
    const result = w.store.put(type, id, resource, 'PUT', cur);
    return writeResponse(req, type, id, result, result.created ? 201 : 200, `${result.created ? 'created' : 'updated'} ${type}/${id}`);
  });
}

export function conditionalUpdate(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  const resource = checkResource(req.body, type);
  return w.store.transaction(() => {
    const found = conditionalMatches(w.store, type, req.query);
    if (found.length > 1) throw multipleMatches(type);
    let id: string;
    if (found.length === 1) {
      id = found[0].id;
      if (resource.id !== undefined && resource.id !== id) {
        throw refuse(400, 'id-mismatch', 'invalid', `body id '${String(resource.id)}' is not the id of the matching ${type} (${id})`, [`${type}.id`]);
      }
    } else {
      // No match: an update-as-create with the body's id, or a create with a new one.
      id = typeof resource.id === 'string' ? resource.id : randomUUID();
    }
    resource.id = id;
    const cur = w.store.current(type, id);
    if (!found.length && cur && !cur.deleted) {
      // The body names an existing resource the criteria do not match: overwriting it would
      // not be the conditional update the client asked for (R5 makes this a 409 explicitly).
      throw refuse(409, 'conflict', 'conflict', `${type}/${id} exists but does not match the criteria`);
    }
    checkIfMatch(req, type, id, cur);
    const result = w.store.put(type, id, resource, 'PUT', cur);
    return writeResponse(req, type, id, result, result.created ? 201 : 200, `${result.created ? 'created' : 'updated'} ${type}/${id}`);
  });
}

function checkPatch(body: unknown): Operation[] {
  if (!Array.isArray(body)) {
    throw refuse(400, 'bad-patch', 'invalid', 'a JSON Patch body is an array of operations (FHIRPath Patch is not supported)');
  }
  for (const [i, op] of body.entries()) {
    if (!op || typeof op !== 'object' || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw refuse(400, 'bad-patch', 'invalid', `JSON Patch operation ${i} needs string 'op' and 'path'`);
    }
    for (const pointer of [op.path, op.from].filter((p) => typeof p === 'string') as string[]) {
      if (/(^|\/)(__proto__|constructor|prototype)(\/|$)/.test(pointer)) {
        throw refuse(400, 'bad-patch', 'invalid', `JSON Patch operation ${i}: '${pointer}' is not a path into a resource`);
      }
    }
  }
  return body as Operation[];
}

function patchCurrent(w: WorkerContext, req: FhirRequest, type: string, id: string, ops: Operation[]): FhirResponse {
  const cur = w.store.current(type, id);
  if (!cur) throw notFound(type, id);
  if (cur.deleted) throw gone(type, id, cur.version);
  checkIfMatch(req, type, id, cur);
  const resource = JSON.parse(cur.json!) as Json;
  let failures: string[];
  try {
    failures = applyPatch(resource, ops)
      .map((err, i) => (err ? `operation ${i} (${ops[i].op} ${ops[i].path}): ${err.name}` : ''))
      .filter(Boolean);
  } catch (err) {
    failures = [(err as Error).message];
  }
  if (failures.length) throw refuse(422, 'patch-failed', 'processing', `the JSON Patch cannot be applied to ${type}/${id}: ${failures.join('; ')}`);
  if (resource === null || typeof resource !== 'object' || resource.resourceType !== type || resource.id !== id) {
    throw refuse(422, 'patch-failed', 'processing', `a JSON Patch must not change a resource's resourceType or id`);
  }
  checkResource(resource, type);
  const result = w.store.put(type, id, resource, 'PATCH', cur);
  return writeResponse(req, type, id, result, 200, `patched ${type}/${id}`);
}

export function patch(w: WorkerContext, req: FhirRequest, type: string, id: string): FhirResponse {
  const ops = checkPatch(req.body);
  return w.store.transaction(() => patchCurrent(w, req, type, id, ops));
}

export function conditionalPatch(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  const ops = checkPatch(req.body);
  return w.store.transaction(() => {
    const found = conditionalMatches(w.store, type, req.query);
    if (found.length > 1) throw multipleMatches(type);
    if (!found.length) throw refuse(404, 'not-found', 'not-found', `no ${type} matches the criteria`);
    return patchCurrent(w, req, type, found[0].id, ops);
  });
}

function deleteCurrent(w: WorkerContext, req: FhirRequest, type: string, id: string): FhirResponse {
  const cur = w.store.current(type, id);
  if (!cur) throw notFound(type, id);
  checkIfMatch(req, type, id, cur);
  if (cur.deleted) {
    // Deleting a deleted resource has no effect (R4 http §3.1.0.7): no new version.
    return { status: 200, body: outcomeBody([info(`${type}/${id} was already deleted`)]) };
  }
  const result = w.store.put(type, id, null, 'DELETE', cur);
  return {
    status: 200,
    headers: { ETag: `W/"${result.version}"` },
    body: outcomeBody([info(`deleted ${type}/${id}`)]),
    version: { type, id, version: result.version, lastUpdated: result.lastUpdated },
  };
}

export function remove(w: WorkerContext, req: FhirRequest, type: string, id: string): FhirResponse {
  if (!ID_RE.test(id)) throw notFound(type, id);
  return w.store.transaction(() => deleteCurrent(w, req, type, id));
}

export function conditionalRemove(w: WorkerContext, req: FhirRequest, type: string): FhirResponse {
  return w.store.transaction(() => {
    const found = conditionalMatches(w.store, type, req.query);
    if (found.length > 1) throw multipleMatches(type);
    if (!found.length) return { status: 200, body: outcomeBody([info(`no ${type} matches the criteria; nothing deleted`, 'not-found')]) };
    return deleteCurrent(w, req, type, found[0].id);
  });
}
