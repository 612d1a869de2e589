// SearchRequest conditions → SQL over the index tables. Every condition is a predicate on a
// resource's rid (`<rid> IN (SELECT rid FROM idx_... WHERE ...)`), so chains and `_has` nest
// by handing the inner condition another rid expression. Values are always bound
// parameters; only table and column names, which come from fixed tables, are spliced in.

import type { IndexedParam } from '../indexing/params';
import { prefixUpperBound, normalizeString } from '../indexing/values';
import { INDEX_TABLES } from '../storage/schema';
import type { Condition, Prefix, SortKey, Value } from './query';

export interface Sql {
  sql: string;
  args: unknown[];
}

/**
 * Per query: nested subqueries get aliases numbered in order, so the same search shape always
 * yields the same SQL text (and hits the statement cache).
 */
export interface SqlContext {
  aliases: number;
  now: number;
}

export function sqlContext(): SqlContext {
  return { aliases: 0, now: Date.now() };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}

/** FHIR R4 search §3.1.1.4.2 on ranges: [lo, hi] is the resource's, [ps, pe] the parameter's. */
function rangePredicate(prefix: Prefix, lo: string, hi: string, ps: number, pe: number, now: number): Sql {
  switch (prefix) {
    case 'eq':
      return { sql: `(${lo} >= ? AND ${hi} <= ?)`, args: [ps, pe] };
    case 'ne':
      return { sql: `NOT (${lo} >= ? AND ${hi} <= ?)`, args: [ps, pe] };
    case 'gt':
      return { sql: `${hi} > ?`, args: [pe] };
    case 'lt':
      return { sql: `${lo} < ?`, args: [ps] };
    case 'ge':
      return { sql: `(${hi} > ? OR (${lo} >= ? AND ${hi} <= ?))`, args: [pe, ps, pe] };
    case 'le':
      return { sql: `(${lo} < ? OR (${lo} >= ? AND ${hi} <= ?))`, args: [ps, ps, pe] };
    case 'sa':
      return { sql: `${lo} > ?`, args: [pe] };
    case 'eb':
      return { sql: `${hi} < ?`, args: [ps] };
    case 'ap': {
      // "Approximately": the ranges overlap once the parameter's is widened by 10% of its
      // distance from now.
      const slack = Math.abs(now - ps) * 0.1;
      return { sql: `(${lo} <= ? AND ${hi} >= ?)`, args: [pe + slack, ps - slack] };
    }
  }
}

/** Numbers are stored exactly; the parameter's implicit precision gives eq its interval. */
function numberPredicate(prefix: Prefix, col: string, value: number, lo: number, hi: number): Sql {
  switch (prefix) {
    case 'eq':
      return { sql: `(${col} >= ? AND ${col} < ?)`, args: [lo, hi] };
    case 'ne':
      return { sql: `NOT (${col} >= ? AND ${col} < ?)`, args: [lo, hi] };
    case 'gt':
    case 'sa':
      return { sql: `${col} > ?`, args: [value] };
    case 'lt':
    case 'eb':
      return { sql: `${col} < ?`, args: [value] };
    case 'ge':
      return { sql: `${col} >= ?`, args: [value] };
    case 'le':
      return { sql: `${col} <= ?`, args: [value] };
    case 'ap': {
      const a = value * 0.9;
      const b = value * 1.1;
      return { sql: `(${col} >= ? AND ${col} <= ?)`, args: [Math.min(a, b), Math.max(a, b)] };
    }
  }
}

function valuePredicate(param: IndexedParam, modifier: string | undefined, v: Value, now: number): Sql {
  switch (v.kind) {
    case 'string':
      if (modifier === 'exact') return { sql: 'exact = ?', args: [v.text] };
      if (modifier === 'contains') return { sql: "norm LIKE ? ESCAPE '\\'", args: [`%${escapeLike(normalizeString(v.text))}%`] };
      return { sql: '(norm >= ? AND norm < ?)', args: [normalizeString(v.text), prefixUpperBound(normalizeString(v.text))] };
    case 'token': {
      if (modifier === 'text') return { sql: "text LIKE ? ESCAPE '\\'", args: [`%${escapeLike(normalizeString(v.code ?? ''))}%`] };
      const parts: string[] = [];
      const args: unknown[] = [];
      if (v.code !== undefined) {
        parts.push('value = ?');
        args.push(v.code);
      }
      if (v.system === null) parts.push('system IS NULL');
      else if (v.system !== undefined) {
        parts.push('system = ?');
        args.push(v.system);
      }
      return { sql: `(${parts.join(' AND ') || '1'})`, args };
    }
    case 'reference':
      if (v.url !== undefined) return { sql: 'url = ?', args: [v.url] };
      if (v.type !== undefined) return { sql: '(target_type = ? AND target_id = ?)', args: [v.type, v.id] };
      return { sql: 'target_id = ?', args: [v.id] };
    case 'date':
      return rangePredicate(v.prefix, 'lo', 'hi', v.range.lo, v.range.hi, now);
    case 'number':
      return numberPredicate(v.prefix, 'value', v.range.value, v.range.lo, v.range.hi);
    case 'quantity': {
      const p = numberPredicate(v.prefix, 'value', v.range.value, v.range.lo, v.range.hi);
      const sql = [p.sql];
      const args = [...p.args];
      if (v.system !== undefined) {
        sql.push('system = ?');
        args.push(v.system);
      }
      if (v.code !== undefined) {
        sql.push(v.system !== undefined ? 'unit_code = ?' : '(unit_code = ? OR unit = ?)');
        args.push(...(v.system !== undefined ? [v.code] : [v.code, v.code]));
      }
      return { sql: `(${sql.join(' AND ')})`, args };
    }
    case 'uri':
      if (modifier === 'below') return { sql: '(value >= ? AND value < ?)', args: [v.text, prefixUpperBound(v.text)] };
      if (modifier === 'above') return { sql: 'value = substr(?, 1, length(value))', args: [v.text] };
      return { sql: 'value = ?', args: [v.text] };
  }
}

function or(parts: Sql[]): Sql {
  if (parts.length === 1) return parts[0];
  return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, args: parts.flatMap((p) => p.args) };
}

/** Conditions of the form `<rid> IN (SELECT rid FROM idx_... WHERE <indexed lookup>)`. */
export function drivesByRid(c: Condition): boolean {
  if (c.kind === 'chain' || c.kind === 'compartment') return true;
  if (c.kind !== 'param' || c.modifier === 'not') return false;
  return c.values.every((v) => !('prefix' in v) || v.prefix !== 'ne');
}

/**
 * `<alias>.type = ?`, or `+<alias>.type = ?` when the conditions name their resources by rid:
 * SQLite should start from those rids, and a usable index on type would tempt it to scan the
 * whole type instead (without statistics it cannot tell which is smaller).
 */
export function typeTerm(a: string, conditions: readonly Condition[]): string {
  return `${conditions.some(drivesByRid) ? '+' : ''}${a}.type = ?`;
}

/** The predicate `cond` puts on the row `a` of resources, a resource of `type`. */
export function conditionSql(cond: Condition, type: string, a: string, ctx: SqlContext): Sql {
  const rid = `${a}.rid`;
  const idCol = `${a}.id`;
  const now = ctx.now;
  switch (cond.kind) {
    case 'id':
      return { sql: `${idCol} IN (${cond.ids.map(() => '?').join(', ')})`, args: cond.ids };
    case 'lastUpdated': {
      const lu = `${a}.last_updated`;
      return or(cond.values.map((v) => rangePredicate(v.prefix, lu, lu, v.range.lo, v.range.hi, now)));
    }
    case 'missing': {
      const table = INDEX_TABLES[cond.param.type];
      return { sql: `${rid} ${cond.missing ? 'NOT IN' : 'IN'} (SELECT rid FROM ${table} WHERE type = ? AND code = ?)`, args: [type, cond.param.code] };
    }
    case 'param': {
      const table = INDEX_TABLES[cond.param.type];
      const negate = cond.modifier === 'not';
      const values = or(cond.values.map((v) => valuePredicate(cond.param, cond.modifier, v, now)));
      return {
        sql: `${rid} ${negate ? 'NOT IN' : 'IN'} (SELECT rid FROM ${table} WHERE type = ? AND code = ? AND ${values.sql})`,
        args: [type, cond.param.code, ...values.args],
      };
    }
    case 'chain': {
      const perTarget = cond.targets.map(({ type: target, inner }) => {
        const t = `t${++ctx.aliases}`;
        const innerSql = conditionSql(inner, target, t, ctx);
        return {
          sql: `(target_type = ? AND target_id IN (SELECT ${t}.id FROM resources ${t} WHERE ${typeTerm(t, [inner])} AND ${t}.deleted = 0 AND ${innerSql.sql}))`,
          args: [target, target, ...innerSql.args],
        };
      });
      const targets = or(perTarget);
      return {
        sql: `${rid} IN (SELECT rid FROM idx_reference WHERE type = ? AND code = ? AND ${targets.sql})`,
        args: [type, cond.param.code, ...targets.args],
      };
    }
    case 'has': {
      const t = `t${++ctx.aliases}`;
      const inner = conditionSql(cond.inner, cond.sourceType, t, ctx);
      return {
        sql: `${idCol} IN (SELECT target_id FROM idx_reference WHERE type = ? AND code = ? AND target_type = ? AND rid IN (SELECT ${t}.rid FROM resources ${t} WHERE ${typeTerm(t, [cond.inner])} AND ${t}.deleted = 0 AND ${inner.sql}))`,
        args: [cond.sourceType, cond.param.code, type, cond.sourceType, ...inner.args],
      };
    }
    case 'compartment': {
      const link = {
        sql: `${rid} IN (SELECT rid FROM idx_reference WHERE type = ? AND code IN (${cond.params.map(() => '?').join(', ')}) AND target_type = ? AND target_id = ?)`,
        args: [type, ...cond.params, cond.type, cond.id],
      };
      if (!cond.self) return cond.params.length ? link : { sql: '0', args: [] };
      const self = { sql: `${idCol} = ?`, args: [cond.id] };
      return cond.params.length ? or([link, self]) : self;
    }
  }
}

/** ORDER BY terms for the sort keys (resources aliased `r`), ending with rid for stable pages. */
export function orderBySql(sort: readonly SortKey[]): Sql {
  const terms: string[] = [];
  const args: unknown[] = [];
  for (const key of sort) {
    const dir = key.descending ? 'DESC' : 'ASC';
    if (key.param === '_id') terms.push(`r.id ${dir}`);
    else if (key.param === '_lastUpdated') terms.push(`r.last_updated ${dir}`);
    else {
      const p = key.param;
      const table = INDEX_TABLES[p.type];
      const agg = key.descending ? 'MAX' : 'MIN';
      const col = { string: 'norm', token: 'value', reference: 'target_id', date: key.descending ? 'hi' : 'lo', number: 'value', quantity: 'value', uri: 'value' }[p.type];
      terms.push(`(SELECT ${agg}(${col}) FROM ${table} s WHERE s.rid = r.rid AND s.code = ?) ${dir} NULLS LAST`);
      args.push(p.code);
    }
  }
  terms.push('r.rid ASC');
  return { sql: `ORDER BY ${terms.join(', ')}`, args };
}
