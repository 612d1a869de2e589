// Value normalisation shared by indexing (at write time) and searching (per request), so the
// two sides of every comparison are computed by the same code.

/** Case- and accent-insensitive form used by string search (FHIR R4 search §3.1.1.4.8). */
export function normalizeString(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** Upper bound of every string with the given prefix (binary collation: U+10FFFF sorts last). */
export function prefixUpperBound(prefix: string): string {
  return prefix + '\u{10FFFF}';
}

/** Instants as milliseconds since the epoch; open ends of periods use the extremes. */
export const MIN_TIME = -8.64e15;
export const MAX_TIME = 8.64e15;

/** The closed interval of instants a FHIR date, dateTime or instant value covers. */
export interface TimeRange {
  lo: number;
  hi: number;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

function utc(year: number, month: number, day: number, h = 0, m = 0, s = 0, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(h, m, s, ms);
  return d.getTime();
}

/**
 * The range a date/dateTime/instant covers at its precision: `2020` is the whole year,
 * `2020-03-04T10:00` a minute. A value without a time zone is read as UTC: the worker's
 * clock, and what its users are told in the README.
 */
export function dateRange(text: string): TimeRange | undefined {
  const m = DATE_RE.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? undefined : Number(m[2]);
  const day = m[3] === undefined ? undefined : Number(m[3]);
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (month === undefined) return { lo: utc(year, 0, 1), hi: utc(year + 1, 0, 1) - 1 };
  if (day === undefined) return { lo: utc(year, month - 1, 1), hi: utc(year, month, 1) - 1 };
  const lastDay = new Date(utc(year, month, 1) - 1).getUTCDate();
  if (day < 1 || day > lastDay) return undefined;
  if (m[4] === undefined) return { lo: utc(year, month - 1, day), hi: utc(year, month - 1, day + 1) - 1 };
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? undefined : Number(m[6]);
  if (hour > 23 || minute > 59 || (second !== undefined && second > 59)) return undefined;
  let offset = 0;
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(4, 6));
    if (zh > 14 || zm > 59) return undefined;
    offset = sign * (zh * 60 + zm) * 60_000;
  }
  const fraction = m[7];
  const ms = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  const lo = utc(year, month - 1, day, hour, minute, second ?? 0, ms) - offset;
  const width = second === undefined ? 60_000 : fraction === undefined ? 1000 : fraction.length >= 3 ? 1 : 10 ** (3 - fraction.length);
  return { lo, hi: lo + width - 1 };
}

/** A decimal with the interval its written precision implies: `100` is [99.5, 100.5). */
export interface NumberRange {
  value: number;
  lo: number;
  hi: number;
}

const NUMBER_RE = /^[+-]?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

export function numberRange(text: string): NumberRange | undefined {
  const m = NUMBER_RE.exec(text);
  if (!m) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  const decimals = (m[2]?.length ?? 0) - Number(m[3] ?? 0);
  const half = 0.5 * 10 ** -decimals;
  return { value, lo: value - half, hi: value + half };
}
