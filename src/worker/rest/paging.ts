// The query of the paged responses that are not searches (history, $everything): `_count`,
// `_offset`, the format parameters, and whatever extra parameters the caller handles; any
// other parameter is refused rather than ignored.

import { refuse } from '../../fhir/outcome';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/parse';

const FORMAT_PARAMS: ReadonlySet<string> = new Set(['_format', '_pretty']);

export interface Paging {
  count: number;
  offset: number;
  /** The parameters minus `_offset`, for the page links. */
  linkParams: [string, string][];
}

/** `extra` handles further parameters by name (and throws FhirError on bad values). */
export function parsePaging(query: readonly [string, string][], what: string, extra: Record<string, (value: string) => void> = {}): Paging {
  const paging: Paging = { count: DEFAULT_COUNT, offset: 0, linkParams: [] };
  for (const [k, v] of query) {
    if (k !== '_offset') paging.linkParams.push([k, v]);
    if (k === '_count' || k === '_offset') {
      if (!/^\d{1,9}$/.test(v)) throw refuse(400, 'bad-paging', 'invalid', `${k} must be a non-negative integer, not '${v}'`);
      if (k === '_count') paging.count = Math.min(Number(v), MAX_COUNT);
      else paging.offset = Number(v);
    } else if (Object.hasOwn(extra, k)) {
      extra[k](v);
    } else if (!FORMAT_PARAMS.has(k)) {
      const supported = ['_count', '_offset', ...Object.keys(extra)].join(', ');
      throw refuse(400, 'not-supported', 'not-supported', `${what} does not support the parameter '${k}' (it supports ${supported})`);
    }
  }
  return paging;
}
