// history-instance, history-type and history-system with `_count`, `_offset` and `_since`.

import { refuse } from '../../fhir/outcome';
import { dateRange } from '../indexing/values';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/parse';
import type { HistoryScope } from '../storage/store';
import { historyBundle } from './bundles';
import type { FhirRequest, FhirResponse, WorkerContext } from './context';
import { notFound } from './read';

const FORMAT_PARAMS = new Set(['_format', '_pretty']);

export function history(w: WorkerContext, req: FhirRequest, type?: string, id?: string): FhirResponse {
  let count = DEFAULT_COUNT;
  let offset = 0;
  let since: number | undefined;
  const linkParams: [string, string][] = [];
  for (const [k, v] of req.query) {
    if (k !== '_offset') linkParams.push([k, v]);
    if (k === '_count' || k === '_offset') {
      if (!/^\d{1,9}$/.test(v)) throw refuse(400, 'bad-history', 'invalid', `${k} must be a non-negative integer, not '${v}'`);
      if (k === '_count') count = Math.min(Number(v), MAX_COUNT);
      else offset = Number(v);
    } else if (k === '_since') {
      const r = dateRange(v);
      if (!r) throw refuse(400, 'bad-history', 'invalid', `_since must be an instant, not '${v}'`);
      since = r.lo;
    } else if (!FORMAT_PARAMS.has(k)) {
      throw refuse(400, 'bad-history', 'not-supported', `history does not support the parameter '${k}' (it supports _count, _offset, _since)`);
    }
  }
  if (type && id && !w.store.current(type, id)) throw notFound(type, id);
  const scope: HistoryScope = { ...(type ? { type } : {}), ...(id ? { id } : {}), ...(since !== undefined ? { since } : {}) };
  const rows = count === 0 ? [] : w.store.history(scope, count + 1, offset);
  const hasNext = rows.length > count;
  const total = w.store.historyCount(scope);
  const url = [req.base, type, id, '_history'].filter(Boolean).join('/');
  const body = historyBundle(req.base, hasNext ? rows.slice(0, count) : rows, total, { url, params: linkParams, offset, count, hasNext });
  return { status: 200, body };
}
