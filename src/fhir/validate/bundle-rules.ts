// Rules that span a whole Bundle: a request in every batch/transaction entry and a response
// in every response entry (bdl-3, bdl-4), a POST or PUT request's url agreeing with the
// entry's resource, fullUrls absolute (or urn:uuid/urn:oid) and unique (bdl-7), `urn:`
// references resolvable to an entry, a document's or message's references inside it
// (bundle-resolve.ts), and the link relations. A RESTful fullUrl naming another type than its
// resource is an error; naming another id only a warning, as one R4 example does it.

import { checkDocumentOrMessage } from './bundle-resolve';
import { clip } from './primitives';
import { OID_URN_RE, UUID_URN_RE } from './references';
import { isObject, type BundleFrame, type Walker } from './walker';

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
const REST_TAIL_RE = /\/([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;
/** RFC 8288: a registered relation type (lower case token) or an extension relation (absolute URI). */
const RELATION_RE = /^([a-z][a-z0-9.-]*|[A-Za-z][A-Za-z0-9+.-]*:\S+)$/;
/** Relations that identify one page: a bundle has each at most once. */
const SINGLE_RELATIONS = new Set(['self', 'first', 'previous', 'prev', 'next', 'last']);
/** Paging relations only mean something for the results of a search or history. */
const PAGING_RELATIONS = new Set(['first', 'previous', 'prev', 'next', 'last']);
const PAGED_TYPES = new Set(['searchset', 'history']);
const REQUEST_TYPES = new Set(['batch', 'transaction', 'history']);
const RESPONSE_TYPES = new Set(['batch-response', 'transaction-response', 'history']);

export function checkBundle(bundle: Record<string, unknown>, frame: BundleFrame, w: Walker): void {
  const type = typeof bundle.type === 'string' ? bundle.type : '';
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const fullUrls = new Set<string>();
  const seen = new Map<string, number>();

  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (!isObject(entry)) continue;
    if (type) entryParts(entry, i, type, w);
    if (type === 'transaction' || type === 'batch') requestUrl(entry, i, w);
    if (typeof entry.fullUrl !== 'string') continue;
    const fullUrl = entry.fullUrl;
    const at = `.entry[${i}].fullUrl`;
    fullUrls.add(fullUrl);
    if (fullUrl.startsWith('urn:uuid:') ? !UUID_URN_RE.test(fullUrl) : fullUrl.startsWith('urn:oid:') ? !OID_URN_RE.test(fullUrl) : !SCHEME_RE.test(fullUrl)) {
      w.issue('error', 'value', `fullUrl '${clip(fullUrl)}' must be an absolute URL, a urn:uuid or a urn:oid`, at);
      continue;
    }
    const resource = isObject(entry.resource) ? entry.resource : undefined;
    // bdl-7: unique fullUrls (versions of one resource apart); history bundles are exempt.
    const version = resource && isObject(resource.meta) && typeof resource.meta.versionId === 'string' ? resource.meta.versionId : '';
    const key = `${fullUrl}|${version}`;
    const first = seen.get(key);
    if (first !== undefined && type !== 'history') {
      w.issue('error', 'duplicate', `bdl-7: fullUrl '${clip(fullUrl)}'${version ? ` (version ${version})` : ''} is also the fullUrl of entry ${first}`, at);
    } else if (first === undefined) {
      seen.set(key, i);
    }
    // A RESTful fullUrl SHALL end with the type and id of the resource it holds (bundle.html).
    // The type is held to that; the id only warned about, since the R4 examples break it
    // (message-request-link: fullUrl .../Patient/pat12 holding Patient pat2).
    const rest = REST_TAIL_RE.exec(fullUrl);
    if (rest && resource && typeof resource.resourceType === 'string' && w.isResourceType(rest[1])) {
      if (rest[1] !== resource.resourceType) {
        w.issue('error', 'invalid', `fullUrl '${clip(fullUrl)}' names a ${rest[1]}, but the entry holds a ${resource.resourceType}`, at);
      } else if (typeof resource.id === 'string' && rest[2] !== resource.id) {
        w.issue('warning', 'invalid', `fullUrl '${clip(fullUrl)}' does not match the entry's resource ${resource.resourceType}/${resource.id}`, at);
      }
    }
  }

  for (const { ref, location } of frame.urnRefs) {
    if (!fullUrls.has(ref)) {
      w.issues.push({
        severity: 'error',
        code: 'not-found',
        diagnostics: `'${clip(ref)}' does not resolve to the fullUrl of any entry of the bundle`,
        expression: [location],
      });
    }
  }

  if (type === 'document' || type === 'message') checkDocumentOrMessage(type, entries, w);
  checkLinks(bundle.link, type, '.link', w);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (isObject(entry)) checkLinks(entry.link, type, `.entry[${i}].link`, w);
  }
}

/** bdl-3 and bdl-4: which bundle types carry a request, which a response, in every entry. */
function entryParts(entry: Record<string, unknown>, i: number, type: string, w: Walker): void {
  const needsRequest = REQUEST_TYPES.has(type);
  if ((entry.request !== undefined) !== needsRequest) {
    if (needsRequest) w.issue('error', 'required', `bdl-3: every entry of a ${type} bundle needs a request`, `.entry[${i}].request`);
    else w.issue('error', 'invalid', `bdl-3: entries of a ${type} bundle must not have a request`, `.entry[${i}].request`);
  }
  const needsResponse = RESPONSE_TYPES.has(type);
  if ((entry.response !== undefined) !== needsResponse) {
    if (needsResponse) w.issue('error', 'required', `bdl-4: every entry of a ${type} bundle needs a response`, `.entry[${i}].response`);
    else w.issue('error', 'invalid', `bdl-4: entries of a ${type} bundle must not have a response`, `.entry[${i}].response`);
  }
}

const TYPE_URL_RE = /^([A-Z][A-Za-z]+)\/?$/;
const INSTANCE_URL_RE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

/**
 * A POST creates a resource of the type its url names, a PUT updates the instance its url
 * names (http.html#create, #update: "the resource SHALL have an id identical to the [id] in
 * the URL"); conditional urls (`Type?criteria`) name no instance.
 */
function requestUrl(entry: Record<string, unknown>, i: number, w: Walker): void {
  const request = entry.request;
  const resource = entry.resource;
  if (!isObject(request) || !isObject(resource) || typeof request.url !== 'string' || typeof resource.resourceType !== 'string') return;
  const url = request.url.split('?')[0];
  const at = `.entry[${i}].request.url`;
  const rt = resource.resourceType;
  if (request.method === 'POST') {
    const m = TYPE_URL_RE.exec(url);
    if (m && m[1] !== rt) w.issue('error', 'invalid', `a POST to '${clip(request.url)}' creates a ${m[1]}, but the entry holds a ${rt}`, at);
  } else if (request.method === 'PUT') {
    const m = INSTANCE_URL_RE.exec(url) ?? TYPE_URL_RE.exec(url);
    if (!m) return;
    if (m[1] !== rt) w.issue('error', 'invalid', `a PUT to '${clip(request.url)}' updates a ${m[1]}, but the entry holds a ${rt}`, at);
    else if (m[2] !== undefined && resource.id !== m[2]) {
      w.issue('error', 'invalid', `a PUT to '${clip(request.url)}' needs the resource's id to be '${m[2]}', not ${resource.id === undefined ? 'absent' : `'${clip(String(resource.id))}'`}`, at);
    }
  }
}

function checkLinks(links: unknown, type: string, at: string, w: Walker): void {
  if (!Array.isArray(links)) return;
  const seen = new Map<string, number>();
  for (let i = 0; i < links.length; i++) {
    const link = links[i];
    if (!isObject(link) || typeof link.relation !== 'string') continue;
    const relation = link.relation;
    const where = `${at}[${i}].relation`;
    if (!RELATION_RE.test(relation)) {
      w.issue('error', 'value', `link relation '${clip(relation)}' is neither a registered relation type nor an absolute URI`, where);
      continue;
    }
    if (SINGLE_RELATIONS.has(relation)) {
      const first = seen.get(relation);
      if (first !== undefined) w.issue('error', 'duplicate', `link relation '${relation}' appears more than once (also link ${first})`, where);
      else seen.set(relation, i);
    }
    if (PAGING_RELATIONS.has(relation) && !PAGED_TYPES.has(type)) {
      w.issue('error', 'business-rule', `link relation '${relation}' pages search or history results; a ${type || 'untyped'} bundle has no pages`, where);
    }
  }
  if (seen.has('prev') && seen.has('previous')) {
    w.issue('error', 'duplicate', "link relations 'prev' and 'previous' both name the previous page", `${at}[${seen.get('prev')}].relation`);
  }
}
