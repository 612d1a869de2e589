// The first stage of the request path: what an HTTP request means as a FHIR R4 interaction
// (http://hl7.org/fhir/R4/http.html). Everything that is not one is refused here with a
// FhirError (400 malformed, 404 unknown type or path, 405 method not allowed for the path),
// so policy, validation and the workers only ever see well-formed interactions.
//
// Choices where the specification leaves room (documented for operators in the README):
// - HEAD is classified exactly like GET ("anywhere a GET can be used, a HEAD is allowed").
// - A trailing slash is an empty segment and refused, like double slashes: one spelling per path.
// - Conditional update/patch/delete need at least one real criterion (not only `_format` and
//   other result parameters): `DELETE Patient` must never mean "delete every Patient".
// - GET on `_search` is 405: R4 defines `_search` for POST only.
// - A compartment search names an owner with an R4 CompartmentDefinition and, unless it is
//   `*`, a member type of that compartment: `Patient/1/Medication` is 404 like any path that
//   names no interaction.

import type { IncomingHttpHeaders } from 'node:http';
import type { Interaction, InteractionKind, InteractionLevel, SearchParam } from './interaction';
import { FhirError, refuse } from './outcome';
import { isResourceType } from './search-parameters';
import { parseQuery } from './query';
import { badPath, isId, isOperationName, looksLikeTypeName, pathSegments, shown, unknownPath } from './path';
import { classifyBundle } from './bundle-entries';
import { COMPARTMENT_OWNERS, inCompartment, isCompartmentOwner } from './compartments';

export interface RequestView {
  /** HTTP method as received (any case). */
  method: string;
  /** Raw path after the FHIR base, still percent-encoded, e.g. '/Patient/123/_history/2' ('' or '/' = base itself). */
  path: string;
  /** Raw query string without '?', percent-encoded ('' if none). */
  query: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body when there is one (needed for Bundles posted to the base). */
  body?: unknown;
  /** Raw application/x-www-form-urlencoded body of a POST _search. */
  form?: string;
  /**
   * The FHIR base path this request came in on (e.g. '/fhir'). Only used to accept absolute
   * `Bundle.entry.request.url`s that point at this server (same Host header and base); without
   * it every absolute entry URL is refused.
   */
  base?: string;
}

/** A 405 refusal that knows which methods the path does allow (for the `Allow` header). */
export class MethodNotAllowedError extends FhirError {
  readonly allow: readonly string[];
  constructor(method: string, what: string, allow: readonly string[]) {
    super(405, 'method-not-allowed', `${shown(method)} is not allowed on ${what}; allowed: ${allow.join(', ')}`, 'not-supported');
    this.allow = allow;
  }
}

const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Resource types with an R4 CompartmentDefinition: the only ones `Type/id/...` searches under. */
export const COMPARTMENT_TYPES: ReadonlySet<string> = new Set(COMPARTMENT_OWNERS);

/** Result-shaping parameters: they select nothing, so they are not criteria of a conditional write. */
const NON_CRITERIA: ReadonlySet<string> = new Set(['_format', '_pretty', '_summary', '_elements', '_count', '_offset', '_sort', '_include', '_revinclude', '_total', '_contained', '_containedType']);

const GET = ['GET', 'HEAD'] as const;
const GET_POST = ['GET', 'HEAD', 'POST'] as const;
const POST = ['POST'] as const;
const INSTANCE = ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE'] as const;
const TYPE = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const BASE = ['GET', 'HEAD', 'POST'] as const;

function interaction(kind: InteractionKind, level: InteractionLevel, params: SearchParam[]): Interaction {
  return { kind, level, conditional: false, params };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) throw refuse(400, 'bad-header', 'invalid', `the ${name} header must appear once`);
  return v;
}

function requireCriteria(i: Interaction, what: string): Interaction {
  if (!i.params.some((p) => !NON_CRITERIA.has(p.name))) {
    throw refuse(400, 'missing-criteria', 'required', `conditional ${what} of ${i.resourceType} needs search criteria in the URL`);
  }
  i.conditional = true;
  return i;
}

function resourceType(seg: string, path: string): string {
  if (isResourceType(seg)) return seg;
  if (looksLikeTypeName(seg)) throw refuse(404, 'unknown-type', 'not-supported', `'${shown(seg)}' is not an R4 resource type`);
  throw unknownPath(path);
}

function id(seg: string, what: string): string {
  if (isId(seg)) return seg;
  throw refuse(400, 'bad-id', 'invalid', `${what} '${shown(seg)}' is not a FHIR id ([A-Za-z0-9-.]{1,64})`);
}

function notACompartment(type: string): FhirError {
  return refuse(404, 'unknown-path', 'not-found', `${type} is not a compartment (only ${COMPARTMENT_OWNERS.join(', ')})`);
}

/** A compartment search for a type outside the compartment's definition names no interaction. */
function checkMember(owner: string, type: string): void {
  if (!inCompartment(owner, type)) {
    throw refuse(404, 'not-in-compartment', 'not-found', `${type} is not in the ${owner} compartment (R4 CompartmentDefinition ${owner.toLowerCase()})`);
  }
}

/** `$op` at any level: GET (operations that change nothing) or POST. */
function operation(m: string, seg: string, level: InteractionLevel, params: SearchParam[]): Interaction {
  if (!isOperationName(seg)) {
    throw badPath(`'${shown(seg)}' is not an operation name ($ followed by letters, digits, '-', '_' or '.')`);
  }
  if (m !== 'GET' && m !== 'POST') throw new MethodNotAllowedError(m, `operation ${seg}`, GET_POST);
  const i = interaction('operation', level, params);
  i.operation = seg;
  return i;
}

/** Options for entry classification inside a Bundle: no nested batches. */
interface Context {
  req: RequestView;
  inBundle: boolean;
}

/** `[base]` itself: system search, batch or transaction. */
function atBase(m: string, params: SearchParam[], ctx: Context): Interaction {
  if (m === 'GET') return interaction('search-system', 'system', params);
  if (m === 'POST') {
    if (ctx.inBundle) throw refuse(400, 'bad-bundle', 'not-supported', 'a batch or transaction cannot contain another one');
    const entries = classifyBundle(ctx.req.body, ctx.req, classifyEntry);
    const i = interaction(entries.type, 'system', params);
    i.entries = entries.entries;
    return i;
  }
  throw new MethodNotAllowedError(m, 'the FHIR base', BASE);
}

/** `[base]/x`: capabilities, system history, system `_search`, system operation, or a type. */
function oneSegment(m: string, s: string, params: SearchParam[], ctx: Context): Interaction {
  if (s === 'metadata') {
    if (m === 'GET') return interaction('capabilities', 'system', params);
    throw new MethodNotAllowedError(m, 'metadata', GET);
  }
  if (s === '_history') {
    if (m === 'GET') return interaction('history-system', 'system', params);
    throw new MethodNotAllowedError(m, '_history', GET);
  }
  if (s === '_search') {
    if (m === 'POST') return withForm(interaction('search-system', 'system', params), ctx);
    throw new MethodNotAllowedError(m, '_search', POST);
  }
  if (s.charCodeAt(0) === 36 /* $ */) {
    return operation(m, s, 'system', params);
  }
  const type = resourceType(s, ctx.req.path);
  let i: Interaction;
  switch (m) {
    case 'GET':
      i = interaction('search-type', 'type', params);
      i.resourceType = type;
      return i;
    case 'POST': {
      i = interaction('create', 'type', params);
      i.resourceType = type;
      const ifNoneExist = header(ctx.req.headers, 'if-none-exist');
      if (ifNoneExist === undefined) return i;
      const criteria = parseQuery(ifNoneExist.charCodeAt(0) === 63 /* ? */ ? ifNoneExist.slice(1) : ifNoneExist);
      i.params = params.concat(criteria);
      return requireCriteria(i, 'create');
    }
    case 'PUT':
      i = interaction('update', 'type', params);
      i.resourceType = type;
      return requireCriteria(i, 'update');
    case 'PATCH':
      i = interaction('patch', 'type', params);
      i.resourceType = type;
      return requireCriteria(i, 'patch');
    default:
      i = interaction('delete', 'type', params);
      i.resourceType = type;
      return requireCriteria(i, 'delete');
  }
}

/** `[base]/Type/x`: type history, type `_search`, type operation, or an instance. */
function twoSegments(m: string, type: string, s: string, params: SearchParam[], ctx: Context): Interaction {
  let i: Interaction;
  if (s === '_history') {
    if (m !== 'GET') throw new MethodNotAllowedError(m, `${type}/_history`, GET);
    i = interaction('history-type', 'type', params);
  } else if (s === '_search') {
    if (m !== 'POST') throw new MethodNotAllowedError(m, `${type}/_search`, POST);
    i = withForm(interaction('search-type', 'type', params), ctx);
  } else if (s.charCodeAt(0) === 36 /* $ */) {
    i = operation(m, s, 'type', params);
  } else {
    const rid = id(s, 'id');
    switch (m) {
      case 'GET':
        i = interaction('read', 'instance', params);
        break;
      case 'PUT':
        i = interaction('update', 'instance', params);
        break;
      case 'PATCH':
        i = interaction('patch', 'instance', params);
        break;
      case 'DELETE':
        i = interaction('delete', 'instance', params);
        break;
      default:
        throw new MethodNotAllowedError(m, `${type}/[id]`, INSTANCE);
    }
    i.id = rid;
  }
  i.resourceType = type;
  return i;
}

/** `[base]/Type/id/x`: instance history, instance operation, or a compartment search. */
function threeSegments(m: string, type: string, rid: string, s: string, params: SearchParam[], ctx: Context): Interaction {
  let i: Interaction;
  if (s === '_history') {
    if (m !== 'GET') throw new MethodNotAllowedError(m, `${type}/[id]/_history`, GET);
    i = interaction('history-instance', 'instance', params);
  } else if (s.charCodeAt(0) === 36 /* $ */) {
    i = operation(m, s, 'instance', params);
  } else {
    // Compartment search: `Patient/123/*`, `Patient/123/_search`, `Patient/123/Observation`.
    const target = s === '*' || s === '_search' ? undefined : resourceType(s, ctx.req.path);
    if (!isCompartmentOwner(type)) throw notACompartment(type);
    if (target !== undefined) checkMember(type, target);
    if (s === '_search') {
      if (m !== 'POST') throw new MethodNotAllowedError(m, `${type}/[id]/_search`, POST);
    } else if (m !== 'GET') {
      throw new MethodNotAllowedError(m, `the ${type} compartment`, GET);
    }
    i = interaction(target ? 'search-type' : 'search-system', target ? 'type' : 'system', params);
    if (s === '_search') withForm(i, ctx);
    if (target) i.resourceType = target;
    i.compartment = { resourceType: type, id: rid };
    return i;
  }
  i.resourceType = type;
  i.id = rid;
  return i;
}

/** `[base]/Type/id/_history/vid` (vread) and `[base]/Compartment/id/Type/_search`. */
function fourSegments(m: string, seg: string[], params: SearchParam[], ctx: Context): Interaction {
  const type = resourceType(seg[0], ctx.req.path);
  const rid = id(seg[1], 'id');
  if (seg[2] === '_history') {
    const vid = id(seg[3], 'version id');
    if (m !== 'GET') throw new MethodNotAllowedError(m, `${type}/[id]/_history/[vid]`, GET);
    const i = interaction('vread', 'instance', params);
    i.resourceType = type;
    i.id = rid;
    i.versionId = vid;
    return i;
  }
  if (seg[3] === '_search' && isCompartmentOwner(type)) {
    const target = resourceType(seg[2], ctx.req.path);
    checkMember(type, target);
    if (m !== 'POST') throw new MethodNotAllowedError(m, `${type}/[id]/${target}/_search`, POST);
    const i = withForm(interaction('search-type', 'type', params), ctx);
    i.resourceType = target;
    i.compartment = { resourceType: type, id: rid };
    return i;
  }
  throw unknownPath(ctx.req.path);
}

/** `[base]/Type/id/_history/vid/$op`: an operation on one version (e.g. `$meta`). */
function fiveSegments(m: string, seg: string[], params: SearchParam[], path: string): Interaction {
  const type = resourceType(seg[0], path);
  const rid = id(seg[1], 'id');
  if (seg[2] !== '_history' || seg[4].charCodeAt(0) !== 36) throw unknownPath(path);
  const vid = id(seg[3], 'version id');
  const i = operation(m, seg[4], 'instance', params);
  i.resourceType = type;
  i.id = rid;
  i.versionId = vid;
  return i;
}

/** Adds the parameters of a `_search` form body after the URL's, and says how many came from it. */
function withForm(i: Interaction, ctx: Context): Interaction {
  const form = ctx.req.form;
  if (form === undefined || form === '') return i;
  const fromBody = parseQuery(form);
  if (fromBody.length === 0) return i;
  i.params = i.params.length === 0 ? fromBody : i.params.concat(fromBody);
  i.formParams = fromBody.length;
  return i;
}

function classifyIn(req: RequestView, inBundle: boolean): Interaction {
  const upper = req.method.toUpperCase();
  if (!METHODS.has(upper)) throw new MethodNotAllowedError(req.method, 'a FHIR server', TYPE);
  const m = upper === 'HEAD' ? 'GET' : upper;
  const seg = pathSegments(req.path);
  const params = parseQuery(req.query);
  const ctx: Context = { req, inBundle };
  switch (seg.length) {
    case 0:
      return atBase(m, params, ctx);
    case 1:
      return oneSegment(m, seg[0], params, ctx);
    case 2:
      return twoSegments(m, resourceType(seg[0], req.path), seg[1], params, ctx);
    case 3:
      return threeSegments(m, resourceType(seg[0], req.path), id(seg[1], 'id'), seg[2], params, ctx);
    case 4:
      return fourSegments(m, seg, params, ctx);
    default:
      return fiveSegments(m, seg, params, req.path);
  }
}

function classifyEntry(req: RequestView): Interaction {
  return classifyIn(req, true);
}

/** Classifies one request. Throws FhirError (400/404/405) for what is not a FHIR interaction. */
export function classify(req: RequestView): Interaction {
  return classifyIn(req, false);
}
