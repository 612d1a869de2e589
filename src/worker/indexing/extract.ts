// What a resource contributes to the search index: for each indexed parameter of its type,
// the values its FHIRPath expression selects, turned into rows of the table for that
// parameter kind. Computed at write time (inside the write's transaction), so a search is an
// indexed SQL lookup and never re-reads resources.

import { evalFhirPathTyped, toTypedValue } from '@medplum/core';
import { indexedParamsOf, type IndexedParam } from './params';
import { parseLocalReference } from './references';
import { dateRange, MAX_TIME, MIN_TIME, normalizeString } from './values';

export interface IndexRows {
  /** [code, normalized, exact] */
  string: [string, string, string][];
  /** [code, system, value, text]: value is null for a CodeableConcept with text only. */
  token: [string, string | null, string | null, string | null][];
  /** [code, target type, target id, url]: type/id for local references, url for any other. */
  reference: [string, string | null, string | null, string | null][];
  /** [code, lo, hi] in ms since the epoch, inclusive. */
  date: [string, number, number][];
  /** [code, value] */
  number: [string, number][];
  /** [code, value, system, code, unit] */
  quantity: [string, number, string | null, string | null, string | null][];
  /** [code, value] */
  uri: [string, string][];
}

type Json = Record<string, unknown>;
type Value = { type: string; value: unknown };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : []);

const STRING_TYPES = new Set(['string', 'markdown', 'code', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid']);
const TOKEN_PRIMITIVES = new Set(['code', 'string', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid']);
const URI_TYPES = new Set(['uri', 'url', 'canonical', 'oid', 'uuid', 'string']);
const NUMBER_TYPES = new Set(['integer', 'decimal', 'positiveInt', 'unsignedInt']);
const QUANTITY_TYPES = new Set(['Quantity', 'Age', 'Duration', 'Distance', 'Count', 'SimpleQuantity', 'MoneyQuantity']);
const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);

function addString(rows: IndexRows, code: string, v: Value): void {
  const push = (s: string | undefined): void => {
    if (s) rows.string.push([code, normalizeString(s), s]);
  };
  const o = v.value as Json;
  if (STRING_TYPES.has(v.type)) push(str(v.value));
  else if (v.type === 'HumanName') {
    push(str(o.text));
    push(str(o.family));
    for (const s of [...strs(o.given), ...strs(o.prefix), ...strs(o.suffix)]) push(s);
  } else if (v.type === 'Address') {
    push(str(o.text));
    for (const s of strs(o.line)) push(s);
    for (const k of ['city', 'district', 'state', 'postalCode', 'country']) push(str(o[k]));
  }
}

function addCoding(rows: IndexRows, code: string, c: Json, text: string | undefined): void {
  const value = str(c.code);
  const display = str(c.display);
  const words = [text, display].filter(Boolean).join(' ');
  if (value || display) rows.token.push([code, str(c.system) ?? null, value ?? null, words ? normalizeString(words) : null]);
}

function addToken(rows: IndexRows, code: string, v: Value): void {
  const o = v.value as Json;
  switch (v.type) {
    case 'Coding':
      addCoding(rows, code, o, undefined);
      return;
    case 'CodeableConcept': {
      const text = str(o.text);
      const codings = Array.isArray(o.coding) ? (o.coding as Json[]) : [];
      for (const c of codings) if (c && typeof c === 'object') addCoding(rows, code, c, text);
      if (!codings.length && text) rows.token.push([code, null, null, normalizeString(text)]);
      return;
    }
    case 'Identifier': {
      const typeText = (o.type as Json | undefined)?.text;
      if (str(o.value)) rows.token.push([code, str(o.system) ?? null, o.value as string, str(typeText) ? normalizeString(typeText as string) : null]);
      return;
    }
    case 'ContactPoint':
      if (str(o.value)) rows.token.push([code, str(o.system) ?? null, o.value as string, null]);
      return;
    case 'boolean':
      if (typeof v.value === 'boolean') rows.token.push([code, null, String(v.value), null]);
      return;
    default:
      if (TOKEN_PRIMITIVES.has(v.type) && str(v.value)) rows.token.push([code, null, v.value as string, null]);
  }
}

function addReference(rows: IndexRows, code: string, v: Value): void {
  let text: string | undefined;
  if (v.type === 'Reference') text = str((v.value as Json).reference);
  else if (v.type === 'canonical' || v.type === 'uri' || v.type === 'url') text = str(v.value);
  if (!text || text.startsWith('#')) return;
  const local = parseLocalReference(text);
  if (local) rows.reference.push([code, local.type, local.id, null]);
  else rows.reference.push([code, null, null, v.type === 'canonical' ? text.split('|')[0] : text]);
}

function addDate(rows: IndexRows, code: string, v: Value): void {
  if (DATE_TYPES.has(v.type)) {
    const r = typeof v.value === 'string' ? dateRange(v.value) : undefined;
    if (r) rows.date.push([code, r.lo, r.hi]);
  } else if (v.type === 'Period') {
    const o = v.value as Json;
    const start = str(o.start) ? dateRange(o.start as string) : undefined;
    const end = str(o.end) ? dateRange(o.end as string) : undefined;
    if (start || end) rows.date.push([code, start?.lo ?? MIN_TIME, end?.hi ?? MAX_TIME]);
  } else if (v.type === 'Timing') {
    for (const e of strs((v.value as Json).event)) {
      const r = dateRange(e);
      if (r) rows.date.push([code, r.lo, r.hi]);
    }
  }
}

function addQuantity(rows: IndexRows, code: string, v: Value): void {
  const o = v.value as Json;
  if (QUANTITY_TYPES.has(v.type)) {
    if (typeof o.value === 'number') rows.quantity.push([code, o.value, str(o.system) ?? null, str(o.code) ?? null, str(o.unit) ?? null]);
  } else if (v.type === 'Money') {
    if (typeof o.value === 'number') rows.quantity.push([code, o.value, 'urn:iso:std:iso:4217', str(o.currency) ?? null, null]);
  }
}

function addValue(rows: IndexRows, p: IndexedParam, v: Value): void {
  if (v.value === undefined || v.value === null) return;
  switch (p.type) {
    case 'string':
      return addString(rows, p.code, v);
    case 'token':
      return addToken(rows, p.code, v);
    case 'reference':
      return addReference(rows, p.code, v);
    case 'date':
      return addDate(rows, p.code, v);
    case 'number':
      if (NUMBER_TYPES.has(v.type) && typeof v.value === 'number') rows.number.push([p.code, v.value]);
      return;
    case 'quantity':
      return addQuantity(rows, p.code, v);
    case 'uri':
      if (URI_TYPES.has(v.type) && str(v.value)) rows.uri.push([p.code, v.value as string]);
      return;
  }
}

function dedupe<T extends unknown[]>(list: T[]): T[] {
  if (list.length < 2) return list;
  const seen = new Set<string>();
  return list.filter((row) => {
    const key = JSON.stringify(row);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function extractIndexRows(resource: Json): IndexRows {
  const rows: IndexRows = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
  const typed = toTypedValue(resource);
  const variables = { '%resource': typed, '%context': typed };
  for (const p of indexedParamsOf(resource.resourceType as string)) {
    let values: Value[];
    try {
      values = evalFhirPathTyped(p.atom, [typed], variables);
    } catch {
      // An expression that cannot evaluate on this resource's shape selects nothing; the
      // resource is still stored (write-time validation already refused broken structure).
      continue;
    }
    for (const v of values) addValue(rows, p, v);
  }
  for (const k of Object.keys(rows) as (keyof IndexRows)[]) (rows[k] as unknown[][]) = dedupe(rows[k] as unknown[][]);
  return rows;
}
