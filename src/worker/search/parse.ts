// Query parameters (or a `_search` form body) → SearchRequest. Strict: a parameter, modifier
// or value the worker cannot honour is a 400 naming it, never silently ignored, because an
// ignored filter returns more than the client asked for. The values' syntax (prefixes,
// `system|code`, escapes, comma alternatives) is FHIR R4 search §3.1.1.

import { refuse } from '../../fhir/outcome';
import { searchParam } from '../../fhir/search-parameters';
import { indexedParam, type IndexedParam } from '../indexing/params';
import { ID_RE, parseLocalReference } from '../indexing/references';
import { dateRange, numberRange } from '../indexing/values';
import type { Condition, IncludeSpec, Prefix, SearchRequest, SortKey, Value } from './query';

export const DEFAULT_COUNT = 50;
export const MAX_COUNT = 1000;
/** Chains and `_has` nest at most this deep. */
const MAX_DEPTH = 3;
/** Comma-separated alternatives of one parameter: far more than a real search, far fewer than SQLite's bound variables. */
const MAX_ALTERNATIVES = 1000;

const MODIFIERS: Record<IndexedParam['type'], ReadonlySet<string>> = {
  string: new Set(['exact', 'contains']),
  token: new Set(['not', 'text']),
  reference: new Set(),
  date: new Set(),
  number: new Set(),
  quantity: new Set(),
  uri: new Set(['below', 'above']),
};

const PREFIX_RE = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/s;

function bad(diagnostics: string) {
  return refuse(400, 'bad-search', 'invalid', diagnostics);
}

function notSupported(diagnostics: string) {
  return refuse(400, 'search-not-supported', 'not-supported', diagnostics);
}

/** Splits on unescaped `sep`, keeping escapes for a later split. */
export function splitEscaped(text: string, sep: string, limit = Infinity): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      cur += c + text[++i];
    } else if (c === sep && out.length < limit - 1) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

function unescape(text: string): string {
  return text.replace(/\\(.)/gs, '$1');
}

function prefixed(raw: string): { prefix: Prefix; rest: string } {
  const m = PREFIX_RE.exec(raw)!;
  return { prefix: (m[1] ?? 'eq') as Prefix, rest: m[2] };
}

function parseDate(raw: string, code: string): Extract<Value, { kind: 'date' }> {
  const { prefix, rest } = prefixed(raw);
  const range = dateRange(rest);
  if (!range) throw bad(`'${raw}' is not a date for the search parameter '${code}' (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss][zone]]]])`);
  return { kind: 'date', prefix, range };
}

function parseValue(param: IndexedParam, modifier: string | undefined, raw: string): Value {
  switch (param.type) {
    case 'string':
      return { kind: 'string', text: unescape(raw) };
    case 'uri':
      return { kind: 'uri', text: unescape(raw) };
    case 'token': {
      if (modifier === 'text') return { kind: 'token', code: unescape(raw) };
      const parts = splitEscaped(raw, '|', 2);
      if (parts.length === 1) return { kind: 'token', code: unescape(raw) };
      const system = unescape(parts[0]);
      const code = unescape(parts[1]);
      return { kind: 'token', system: system === '' ? null : system, ...(code !== '' ? { code } : {}) };
    }
    case 'reference': {
      const text = unescape(raw);
      const local = parseLocalReference(text);
      if (local) {
        if (modifier && modifier !== local.type) throw bad(`'${text}' is not a ${modifier} reference (${param.code}:${modifier})`);
        return { kind: 'reference', type: local.type, id: local.id };
      }
      if (ID_RE.test(text)) {
        const type = modifier ?? (param.targets.length === 1 ? param.targets[0] : undefined);
        return { kind: 'reference', ...(type ? { type } : {}), id: text };
      }
      if (modifier) throw bad(`'${text}' is not an id of a ${modifier} (${param.code}:${modifier})`);
      return { kind: 'reference', url: text.split('|')[0] };
    }
    case 'date':
      return parseDate(raw, param.code);
    case 'number': {
      const { prefix, rest } = prefixed(raw);
      const range = numberRange(rest);
      if (!range) throw bad(`'${raw}' is not a number for the search parameter '${param.code}'`);
      return { kind: 'number', prefix, range };
    }
    case 'quantity': {
      const [num, system, code] = splitEscaped(raw, '|', 3);
      const { prefix, rest } = prefixed(num);
      const range = numberRange(rest);
      if (!range) throw bad(`'${raw}' is not a quantity ([prefix]number[|system|code]) for '${param.code}'`);
      return {
        kind: 'quantity',
        prefix,
        range,
        ...(system ? { system: unescape(system) } : {}),
        ...(code ? { code: unescape(code) } : {}),
      };
    }
  }
}

function lookupParam(type: string, code: string): IndexedParam {
  const param = indexedParam(type, code);
  if (param) return param;
  if (searchParam(type, code)) throw notSupported(`the search parameter '${code}' of ${type} is not supported by this server`);
  throw bad(`unknown search parameter '${code}' for ${type}`);
}

/** One `key=value` whose key is a (possibly chained or modified) parameter of `type`. */
function parseCondition(type: string, key: string, value: string, depth: number): Condition {
  if (depth > MAX_DEPTH) throw notSupported(`'${key}': chains nest at most ${MAX_DEPTH} deep`);
  if (key.startsWith('_has:')) return parseHas(type, key, value, depth);
  const dot = key.indexOf('.');
  if (dot >= 0) return parseChain(type, key.slice(0, dot), key.slice(dot + 1), value, depth);
  const colon = key.indexOf(':');
  const code = colon < 0 ? key : key.slice(0, colon);
  const modifier = colon < 0 ? undefined : key.slice(colon + 1);
  if (value === '') throw bad(`the search parameter '${key}' has an empty value`);
  const alternatives = splitEscaped(value, ',');
  if (alternatives.length > MAX_ALTERNATIVES) throw bad(`'${key}' has ${alternatives.length} alternatives; at most ${MAX_ALTERNATIVES} are accepted`);
  if (code === '_id') {
    if (modifier) throw notSupported(`the modifier ':${modifier}' is not supported on _id`);
    return { kind: 'id', ids: alternatives.map(unescape) };
  }
  if (code === '_lastUpdated') {
    if (modifier) throw notSupported(`the modifier ':${modifier}' is not supported on _lastUpdated`);
    return { kind: 'lastUpdated', values: alternatives.map((v) => parseDate(v, code)) };
  }
  const param = lookupParam(type, code);
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw bad(`'${key}' takes true or false, not '${value}'`);
    return { kind: 'missing', param, missing: value === 'true' };
  }
  if (modifier !== undefined) {
    const typeModifier = param.type === 'reference' && (param.targets.includes(modifier) || (!param.targets.length && /^[A-Z]/.test(modifier)));
    if (!typeModifier && !MODIFIERS[param.type].has(modifier)) {
      throw notSupported(`the modifier ':${modifier}' is not supported on the ${param.type} parameter '${code}' of ${type}`);
    }
  }
  return { kind: 'param', param, ...(modifier !== undefined ? { modifier } : {}), values: alternatives.map((v) => parseValue(param, modifier, v)) };
}

function parseChain(type: string, head: string, rest: string, value: string, depth: number): Condition {
  const [code, modifier] = head.split(':', 2);
  const param = lookupParam(type, code);
  if (param.type !== 'reference') throw bad(`'${head}.${rest}': only reference parameters chain, and '${code}' is a ${param.type}`);
  if (modifier && param.targets.length && !param.targets.includes(modifier)) {
    throw bad(`'${code}' of ${type} does not refer to ${modifier}`);
  }
  const candidates = modifier ? [modifier] : param.targets;
  const targets: { type: string; inner: Condition }[] = [];
  let firstError: unknown;
  for (const target of candidates) {
    try {
      targets.push({ type: target, inner: parseCondition(target, rest, value, depth + 1) });
    } catch (err) {
      firstError ??= err;
    }
  }
  if (!targets.length) throw firstError ?? bad(`'${head}.${rest}': no target type of '${code}' has the parameter '${rest}'`);
  return { kind: 'chain', param, targets };
}

function parseHas(type: string, key: string, value: string, depth: number): Condition {
  const parts = key.split(':');
  if (parts.length < 4) throw bad(`'${key}' is not _has:[type]:[reference parameter]:[parameter]`);
  const [, sourceType, refCode] = parts;
  const param = lookupParam(sourceType, refCode);
  if (param.type !== 'reference' || (param.targets.length && !param.targets.includes(type))) {
    throw bad(`'${key}': '${refCode}' of ${sourceType} is not a reference to ${type}`);
  }
  return { kind: 'has', sourceType, param, inner: parseCondition(sourceType, parts.slice(3).join(':'), value, depth + 1) };
}

function parseNonNegative(name: string, value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw bad(`${name} must be a non-negative integer, not '${value}'`);
  return Number(value);
}

function parseSort(type: string, value: string): SortKey[] {
  return value.split(',').map((item) => {
    const descending = item.startsWith('-');
    const code = descending ? item.slice(1) : item;
    if (code === '_id' || code === '_lastUpdated') return { param: code, descending };
    const param = lookupParam(type, code);
    return { param, descending };
  });
}

function parseInclude(type: string, name: string, value: string, reverse: boolean): IncludeSpec {
  const [sourceType, code, targetType, extra] = value.split(':');
  if (value === '*' || code === '*') throw notSupported(`${name}=${value}: wildcard includes are not supported`);
  if (!sourceType || !code || extra !== undefined) throw bad(`${name}=${value} is not [type]:[parameter][:target type]`);
  if (!reverse && sourceType !== type) throw bad(`${name}=${value}: a search of ${type} can only include from ${type}`);
  const param = lookupParam(sourceType, code);
  if (param.type !== 'reference') throw bad(`${name}=${value}: '${code}' is not a reference parameter`);
  if (targetType && param.targets.length && !param.targets.includes(targetType)) {
    throw bad(`${name}=${value}: '${code}' of ${sourceType} does not refer to ${targetType}`);
  }
  if (reverse && param.targets.length && !param.targets.includes(targetType ?? type)) {
    throw bad(`${name}=${value}: '${code}' of ${sourceType} does not refer to ${type}`);
  }
  return { sourceType, param, ...(targetType ? { targetType } : {}) };
}

/** Parameters that change the response format, handled by the HTTP layer. */
const FORMAT_PARAMS: ReadonlySet<string> = new Set(['_format', '_pretty']);

export function parseSearch(type: string, params: readonly [string, string][]): SearchRequest {
  const req: SearchRequest = {
    type,
    conditions: [],
    sort: [],
    count: DEFAULT_COUNT,
    offset: 0,
    total: 'accurate',
    summaryCount: false,
    include: [],
    revinclude: [],
    linkParams: [],
  };
  for (const [key, value] of params) {
    if (key !== '_offset') req.linkParams.push([key, value]);
    if (FORMAT_PARAMS.has(key)) continue;
    switch (key) {
      case '_count':
        req.count = Math.min(parseNonNegative(key, value), MAX_COUNT);
        break;
      case '_offset':
        req.offset = parseNonNegative(key, value);
        break;
      case '_sort':
        req.sort.push(...parseSort(type, value));
        break;
      case '_include':
      case '_revinclude':
        for (const v of value.split(',')) {
          (key === '_include' ? req.include : req.revinclude).push(parseInclude(type, key, v, key === '_revinclude'));
        }
        break;
      case '_summary':
        if (value === 'count') req.summaryCount = true;
        else if (value !== 'false') throw notSupported(`_summary=${value} is not supported (count and false are)`);
        break;
      case '_total':
        if (value !== 'none' && value !== 'estimate' && value !== 'accurate') throw bad(`_total must be none, estimate or accurate`);
        req.total = value;
        break;
      case '_elements':
        req.elements = value
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean);
        break;
      default:
        if (/^_(include|revinclude):/.test(key)) throw notSupported(`'${key}': iterating includes are not supported`);
        req.conditions.push(parseCondition(type, key, value, 0));
    }
  }
  return req;
}

/** The criteria of a conditional create, update, patch or delete: conditions only. */
export function parseCriteria(type: string, params: readonly [string, string][]): Condition[] {
  const req = parseSearch(type, params);
  if (!req.conditions.length) throw bad(`a conditional interaction needs at least one search criterion`);
  return req.conditions;
}
