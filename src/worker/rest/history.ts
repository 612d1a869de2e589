// history-instance, history-type and history-system with `_count`, `_offset` and `_since`.

import { refuse } from '../../fhir/outcome';
import { dateRange } from '../indexing/values';
import type { HistoryScope } from '../storage/store';
import { historyBundle } from './result-bundles';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';
import { parsePaging } from './paging';
import { notFound } from './read';

export function history(w: WorkerContext, req: FhirRequest, type?: string, id?: string): FhirResponse {
  let since: number | undefined;
  const { count, offset, linkParams } = parsePaging(req.query, 'history', {
    _since: (v) => {
      const r = dateRange(v);
      if (!r) throw refuse(400, 'bad-history', 'invalid', `_since must be an instant, not '${v}'`);
      since = r.lo;
    },
  });
  if (type && id && !w.store.current(type, id)) throw notFound(type, id);
  const scope: HistoryScope = { ...(type ? { type } : {}), ...(id ? { id } : {}), ...(since !== undefined ? { since } : {}) };
  const rows = count === 0 ? [] : w.store.history(scope, count + 1, offset);
  const hasNext = rows.length > count;
  const total = w.store.historyCount(scope);
  const url = [req.base, type, id, '_history'].filter(Boolean).join('/');
  const body = historyBundle(req.base, hasNext ? rows.slice(0, count) : rows, total, { url, params: linkParams, offset, count, hasNext });
  return { status: 200, body };
}
