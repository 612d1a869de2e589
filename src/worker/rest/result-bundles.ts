// Searchset and history Bundles. Entries are spliced in as the stored JSON text, so a page
// of results is never parsed and re-serialised (except for `_elements`, which must cut).

import { randomUUID } from 'node:crypto';
import type { StoredRow, VersionRow } from '../storage/store';

export interface PageLinks {
  /** URL of the search or history without query, e.g. `http://h/Observation`. */
  url: string;
  params: readonly [string, string][];
  offset: number;
  count: number;
  hasNext: boolean;
}

function pageUrl(links: PageLinks, offset: number): string {
  const q = new URLSearchParams(links.params as [string, string][]);
  if (offset > 0) q.set('_offset', String(offset));
  const text = q.toString();
  return text ? `${links.url}?${text}` : links.url;
}

function linkJson(links: PageLinks): string {
  const list = [{ relation: 'self', url: pageUrl(links, links.offset) }];
  if (links.offset > 0) list.push({ relation: 'previous', url: pageUrl(links, Math.max(0, links.offset - links.count)) });
  if (links.hasNext) list.push({ relation: 'next', url: pageUrl(links, links.offset + links.count) });
  return JSON.stringify(list);
}

function head(type: string, total: number | undefined, links: PageLinks): string {
  return (
    `{"resourceType":"Bundle","id":"${randomUUID()}","meta":{"lastUpdated":"${new Date().toISOString()}"},"type":"${type}"` +
    (total !== undefined ? `,"total":${total}` : '') +
    `,"link":${linkJson(links)}`
  );
}

/** Keeps the listed top-level elements (and the mandatory ones), marking the result SUBSETTED. */
export function subsetJson(json: string, elements: readonly string[]): string {
  const resource = JSON.parse(json) as Record<string, unknown>;
  const keep = new Set(['resourceType', 'id', 'meta', ...elements]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) if (keep.has(k)) out[k] = v;
  const meta = { ...((out.meta as Record<string, unknown>) ?? {}) };
  const tags = Array.isArray(meta.tag) ? [...meta.tag] : [];
  tags.push({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' });
  out.meta = { ...meta, tag: tags };
  return JSON.stringify(out);
}

export function searchsetBundle(base: string, matches: readonly StoredRow[], included: readonly StoredRow[], total: number | undefined, links: PageLinks, elements?: readonly string[]): string {
  const entries: string[] = [];
  const entry = (row: StoredRow, mode: 'match' | 'include'): string =>
    `{"fullUrl":${JSON.stringify(`${base}/${row.type}/${row.id}`)},"resource":${elements ? subsetJson(row.json, elements) : row.json},"search":{"mode":"${mode}"}}`;
  for (const row of matches) entries.push(entry(row, 'match'));
  for (const row of included) entries.push(entry(row, 'include'));
  return head('searchset', total, links) + (entries.length ? `,"entry":[${entries.join(',')}]` : '') + '}';
}

const STATUS_OF_METHOD: ReadonlyMap<string, string> = new Map([
  ['POST', '201 Created'],
  ['PUT', '200 OK'],
  ['PATCH', '200 OK'],
  ['DELETE', '204 No Content'],
]);

export function historyBundle(base: string, rows: readonly VersionRow[], total: number, links: PageLinks): string {
  const entries = rows.map((v) => {
    const method = v.method;
    const status = method === 'PUT' && v.version === 1 ? '201 Created' : (STATUS_OF_METHOD.get(method) ?? '200 OK');
    const request = { method, url: method === 'POST' ? v.type : `${v.type}/${v.id}` };
    const response = { status, etag: `W/"${v.version}"`, lastModified: new Date(v.lastUpdated).toISOString() };
    return (
      `{"fullUrl":${JSON.stringify(`${base}/${v.type}/${v.id}`)}` + (v.json !== null ? `,"resource":${v.json}` : '') + `,"request":${JSON.stringify(request)},"response":${JSON.stringify(response)}}`
    );
  });
  return head('history', total, links) + (entries.length ? `,"entry":[${entries.join(',')}]` : '') + '}';
}
