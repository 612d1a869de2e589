// The worker's REST routes: path segments and method → handler. Used for every HTTP request
// and for every entry of a batch or transaction.

import { FhirError, refuse } from '../../fhir/outcome';
import { isResourceType } from '../../fhir/search-parameters';
import { ID_RE } from '../indexing/references';
import { processBundle } from './batch';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';
import { history } from './history';
import { everything, validate } from './operations';
import { read, vread } from './read';
import { compartmentSearch, search, searchByPost } from './search';
import { conditionalPatch, conditionalRemove, conditionalUpdate, create, patch, remove, update } from './write';

function methodNotAllowed(method: string, what: string, allow: string[]): FhirError {
  const err = new FhirError(405, 'method-not-allowed', `${method} is not allowed on ${what}`, 'not-supported');
  err.headers = { Allow: allow.join(', ') };
  return err;
}

function readOnlyRefusal(method: string, what: string, allow: string[]): FhirError {
  const err = new FhirError(405, 'read-only', `this worker is read-only: ${method} ${what} would write`, 'not-supported');
  err.headers = { Allow: allow.join(', ') };
  return err;
}

type Handler = (w: WorkerContext, req: FhirRequest) => FhirResponse;
/** Per path shape: method → handler, and whether that method writes. */
type Methods = Record<string, { handle: Handler; writes: boolean }>;

function route(w: WorkerContext, req: FhirRequest, what: string, methods: Methods): FhirResponse {
  // The method comes from the request (or a bundle entry): only the table's own keys count.
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const m = Object.hasOwn(methods, method) ? methods[method] : undefined;
  const allowed = Object.keys(methods).filter((k) => !w.readOnly || !methods[k].writes);
  if (!m) throw methodNotAllowed(req.method, what, allowed);
  if (m.writes && w.readOnly) throw readOnlyRefusal(req.method, what, allowed);
  return m.handle(w, req);
}

const R = (handle: Handler) => ({ handle, writes: false });
const W = (handle: Handler) => ({ handle, writes: true });

function checkType(type: string): void {
  if (!isResourceType(type)) throw refuse(404, 'unknown-type', 'not-supported', `'${type}' is not an R4 resource type`);
}

function checkId(type: string, id: string): void {
  if (!ID_RE.test(id)) throw refuse(400, 'bad-id', 'invalid', `'${id}' is not a FHIR id ([A-Za-z0-9-.]{1,64}) for ${type}`);
}

function unknownOperation(op: string, where: string): FhirError {
  return refuse(404, 'unknown-operation', 'not-supported', `the operation ${op} is not supported on ${where}`);
}

export function dispatch(w: WorkerContext, req: FhirRequest, capabilities: () => string): FhirResponse {
  const s = req.segments;
  if (s.length === 0) {
    return route(w, req, 'the system endpoint', {
      POST: W((w, r) => processBundle(w, r, (w2, r2) => dispatch(w2, r2, capabilities))),
    });
  }
  const [first, second, third, fourth] = s;
  if (s.length === 1 && first === 'metadata') return route(w, req, 'metadata', { GET: R(() => ({ status: 200, body: capabilities() })) });
  if (s.length === 1 && first === '_history') return route(w, req, '_history', { GET: R((w, r) => history(w, r)) });
  if (first.startsWith('$')) throw unknownOperation(first, 'the system level');
  checkType(first);
  const type = first;
  if (s.length === 1) {
    return route(w, req, type, {
      GET: R((w, r) => search(w, r, type)),
      POST: W((w, r) => create(w, r, type)),
      PUT: W((w, r) => conditionalUpdate(w, r, type)),
      PATCH: W((w, r) => conditionalPatch(w, r, type)),
      DELETE: W((w, r) => conditionalRemove(w, r, type)),
    });
  }
  if (s.length === 2 && second === '_search') return route(w, req, `${type}/_search`, { POST: R((w, r) => searchByPost(w, r, type)) });
  if (s.length === 2 && second === '_history') return route(w, req, `${type}/_history`, { GET: R((w, r) => history(w, r, type)) });
  if (s.length === 2 && second.startsWith('$')) {
    if (second !== '$validate') throw unknownOperation(second, type);
    return route(w, req, `${type}/$validate`, { POST: R((w, r) => validate(w, r, type)) });
  }
  const id = second;
  checkId(type, id);
  if (s.length === 2) {
    return route(w, req, `${type}/${id}`, {
      GET: R((w, r) => read(w, r, type, id)),
      PUT: W((w, r) => update(w, r, type, id)),
      PATCH: W((w, r) => patch(w, r, type, id)),
      DELETE: W((w, r) => remove(w, r, type, id)),
    });
  }
  if (s.length === 3 && third === '_history') return route(w, req, `${type}/${id}/_history`, { GET: R((w, r) => history(w, r, type, id)) });
  if (s.length === 4 && third === '_history') {
    return route(w, req, `${type}/${id}/_history/${fourth}`, { GET: R((w, r) => vread(w, r, type, id, fourth)) });
  }
  if (s.length === 3 && third.startsWith('$')) {
    if (third === '$validate') {
      return route(w, req, `${type}/${id}/$validate`, { GET: R((w, r) => validate(w, r, type, id)), POST: R((w, r) => validate(w, r, type, id)) });
    }
    if (third === '$everything' && type === 'Patient') return route(w, req, `Patient/${id}/$everything`, { GET: R((w, r) => everything(w, r, id)) });
    throw unknownOperation(third, `${type}/${id}`);
  }
  if (s.length === 3) {
    checkType(third);
    return route(w, req, `${type}/${id}/${third}`, { GET: R((w, r) => compartmentSearch(w, r, type, id, third)) });
  }
  throw refuse(404, 'unknown-path', 'not-found', `no FHIR endpoint at /${s.join('/')}`);
}
