// Runs a SearchRequest against the store: one page of matching rids in sort order, the
// total when asked for, then the `_include`/`_revinclude` resources of that page.

import { refuse } from '../../fhir/outcome';
import type { ResourceStore, StoredRow } from '../storage/store';
import { parseCriteria } from './parse';
import type { Condition, IncludeSpec, SearchRequest } from './query';
import { conditionSql, orderBySql, sqlContext, typeTerm, type Sql } from './sql';

export interface SearchResult {
  matches: StoredRow[];
  included: StoredRow[];
  total?: number;
  /** Another page follows this one. */
  hasNext: boolean;
}

/** Bound values per statement: well under SQLite's limit (32,766), far over any real search. */
const MAX_SQL_ARGS = 20_000;

function whereSql(type: string, conditions: readonly Condition[]): Sql {
  const ctx = sqlContext();
  const parts = conditions.map((c) => conditionSql(c, type, 'r', ctx));
  const args = parts.reduce((n, p) => n + p.args.length, 0);
  if (args > MAX_SQL_ARGS) throw refuse(400, 'too-costly', 'too-costly', `the search has too many criteria values (${args}; at most ${MAX_SQL_ARGS})`);
  return {
    sql: [typeTerm('r', conditions), 'r.deleted = 0', ...parts.map((p) => p.sql)].join(' AND '),
    args: [type, ...parts.flatMap((p) => p.args)],
  };
}

/** rids of the resources of `type` matching every condition, in the search's order. */
export function matchingRids(store: ResourceStore, type: string, conditions: readonly Condition[], req?: Pick<SearchRequest, 'sort'>, limit = -1, offset = 0): number[] {
  const where = whereSql(type, conditions);
  const order = orderBySql(req?.sort ?? []);
  const rows = store.prepare(`SELECT r.rid FROM resources r WHERE ${where.sql} ${order.sql} LIMIT ? OFFSET ?`).all(...where.args, ...order.args, limit, offset) as { rid: number }[];
  return rows.map((r) => r.rid);
}

export function countMatches(store: ResourceStore, type: string, conditions: readonly Condition[]): number {
  const where = whereSql(type, conditions);
  return (store.prepare(`SELECT count(*) AS n FROM resources r WHERE ${where.sql}`).get(...where.args) as { n: number }).n;
}

function includeRids(store: ResourceStore, page: readonly StoredRow[], spec: IncludeSpec): number[] {
  const rids = page.filter((r) => r.type === spec.sourceType).map((r) => r.rid);
  if (!rids.length) return [];
  const target = spec.targetType ? ' AND x.target_type = ?' : '';
  const rows = store
    .prepare(
      `SELECT DISTINCT t.rid FROM idx_reference x JOIN resources t ON t.type = x.target_type AND t.id = x.target_id
       WHERE x.rid IN (SELECT value FROM json_each(?)) AND x.type = ? AND x.code = ?${target} AND t.deleted = 0`,
    )
    .all(JSON.stringify(rids), spec.sourceType, spec.param.code, ...(spec.targetType ? [spec.targetType] : [])) as { rid: number }[];
  return rows.map((r) => r.rid);
}

function revincludeRids(store: ResourceStore, page: readonly StoredRow[], spec: IncludeSpec): number[] {
  const byType = new Map<string, string[]>();
  for (const r of page) {
    if (spec.targetType && r.type !== spec.targetType) continue;
    byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
  }
  const out: number[] = [];
  for (const [type, ids] of byType) {
    const rows = store
      .prepare(`SELECT DISTINCT rid FROM idx_reference WHERE type = ? AND code = ? AND target_type = ? AND target_id IN (SELECT value FROM json_each(?))`)
      .all(spec.sourceType, spec.param.code, type, JSON.stringify(ids)) as { rid: number }[];
    out.push(...rows.map((r) => r.rid));
  }
  return out;
}

/** The resources `_include`/`_revinclude` add to a page, without the page's own. */
export function includedRows(store: ResourceStore, page: readonly StoredRow[], include: readonly IncludeSpec[], revinclude: readonly IncludeSpec[]): StoredRow[] {
  if (!include.length && !revinclude.length) return [];
  const seen = new Set(page.map((r) => r.rid));
  const rids: number[] = [];
  const add = (list: number[]): void => {
    for (const rid of list) {
      if (!seen.has(rid)) {
        seen.add(rid);
        rids.push(rid);
      }
    }
  };
  for (const spec of include) add(includeRids(store, page, spec));
  for (const spec of revinclude) add(revincludeRids(store, page, spec));
  return store.rows(rids);
}

export function runSearch(store: ResourceStore, req: SearchRequest, extra: readonly Condition[] = []): SearchResult {
  const conditions = [...req.conditions, ...extra];
  if (req.summaryCount) return { matches: [], included: [], total: countMatches(store, req.type, conditions), hasNext: false };
  const rids = req.count === 0 ? [] : matchingRids(store, req.type, conditions, req, req.count + 1, req.offset);
  const hasNext = rids.length > req.count;
  const matches = store.rows(hasNext ? rids.slice(0, req.count) : rids);
  const total = req.total === 'none' ? undefined : countMatches(store, req.type, conditions);
  return {
    matches,
    included: includedRows(store, matches, req.include, req.revinclude),
    ...(total !== undefined ? { total } : {}),
    hasNext,
  };
}

/**
 * The resources matching the criteria of a conditional interaction (or reference), at most
 * two: enough to tell none, one and several apart.
 */
export function conditionalMatches(store: ResourceStore, type: string, query: [string, string][]): StoredRow[] {
  return store.rows(matchingRids(store, type, parseCriteria(type, query), undefined, 2));
}
