// Rules that span a whole Bundle: a request in every batch/transaction entry and a response
// in every response entry (bdl-3, bdl-4), fullUrls absolute (or urn:uuid/urn:oid) and unique
// (bdl-7), `urn:` references resolvable to an entry, and the link relations (plus a warning
// when a RESTful fullUrl disagrees with its resource).

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
    // A RESTful fullUrl SHOULD end with the type and id of the resource it holds (the spec's
    // own examples do not always): a warning.
    const rest = REST_TAIL_RE.exec(fullUrl);
    if (rest && resource && typeof resource.resourceType === 'string' && w.isResourceType(rest[1])) {
      if (rest[1] !== resource.resourceType || (typeof resource.id === 'string' && rest[2] !== resource.id)) {
        w.issue(
          'warning',
          'invalid',
          `fullUrl '${clip(fullUrl)}' does not match the entry's resource ${resource.resourceType}/${String(resource.id ?? '')}`,
          at,
        );
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
