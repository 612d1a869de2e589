// The R4 primitive types: their JSON representation and lexical rules (the regexes of the
// FHIR 4.0.1 StructureDefinitions, anchored), plus what the regexes cannot say: integer
// ranges, days that exist in their month, the 1 MB string limit. Each check returns a
// diagnostic for an invalid value, or undefined.

import type { IssueCode } from '../outcome';

export interface PrimitiveProblem {
  code: IssueCode;
  diagnostics: string;
}

type Check = (value: unknown) => PrimitiveProblem | undefined;

const shape = (diagnostics: string): PrimitiveProblem => ({ code: 'structure', diagnostics });
const value = (diagnostics: string): PrimitiveProblem => ({ code: 'value', diagnostics });

const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
const ZONE = '(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';
const DATE_RE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`);
const DATETIME_RE = new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T${TIME}${ZONE})?)?)?$`);
const INSTANT_RE = new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T${TIME}${ZONE}$`);
const TIME_RE = new RegExp(`^${TIME}$`);
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
// XML Schema's \s: the FHIR regexes mean these four, not JavaScript's wider Unicode class.
const CODE_RE = /^[^ \t\r\n]+([ \t\r\n][^ \t\r\n]+)*$/;
const URI_RE = /^[^ \t\r\n]*$/;
const OID_RE = /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/;
const UUID_RE = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CONTROL_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** FHIR strings are limited to 1 MB; measured in bytes only when the length makes it possible. */
const MAX_STRING_BYTES = 1024 * 1024;
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The regexes allow 31 days in every month; a date like 2019-02-30 does not exist. */
function impossibleDay(v: string): boolean {
  if (v.length < 10) return false;
  const year = Number(v.slice(0, 4));
  const month = Number(v.slice(5, 7));
  const day = Number(v.slice(8, 10));
  if (day <= 28) return false;
  if (month === 2 && day === 29) return !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
  return day > DAYS_IN_MONTH[month - 1];
}

function str(kind: string, re: RegExp | undefined, extra?: (v: string) => PrimitiveProblem | undefined): Check {
  return (v) => {
    if (typeof v !== 'string') return shape(`a ${kind} must be a JSON string, not ${describe(v)}`);
    if (v.length === 0) return { code: 'invariant', diagnostics: `ele-1: a ${kind} must not be empty` };
    if (v.length > MAX_STRING_BYTES / 4 && Buffer.byteLength(v, 'utf8') > MAX_STRING_BYTES) {
      return { code: 'too-long', diagnostics: `a ${kind} must not exceed 1 MB` };
    }
    if (re && !re.test(v)) return value(`'${clip(v)}' is not a valid ${kind}`);
    return extra?.(v);
  };
}

function int(kind: string, min: number): Check {
  return (v) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) return shape(`a ${kind} must be a JSON integer, not ${describe(v)}`);
    if (v < min || v > INT_MAX) return value(`${v} is out of range for ${kind} (${min}..${INT_MAX})`);
    return undefined;
  };
}

const dateDay = (kind: string) => (v: string) => (impossibleDay(v) ? value(`'${v}' is not a valid ${kind}: no such day`) : undefined);

export const PRIMITIVE_CHECKS: Record<string, Check> = {
  boolean: (v) => (typeof v === 'boolean' ? undefined : shape(`a boolean must be JSON true or false, not ${describe(v)}`)),
  integer: int('integer', INT_MIN),
  positiveInt: int('positiveInt', 1),
  unsignedInt: int('unsignedInt', 0),
  decimal: (v) => (typeof v === 'number' && Number.isFinite(v) ? undefined : shape(`a decimal must be a JSON number, not ${describe(v)}`)),
  string: str('string', undefined),
  markdown: str('markdown', undefined),
  code: str('code', CODE_RE),
  id: str('id', ID_RE),
  uri: str('uri', URI_RE),
  url: str('url', URI_RE),
  canonical: str('canonical', URI_RE),
  oid: str('oid', OID_RE),
  uuid: str('uuid', UUID_RE),
  base64Binary: str('base64Binary', undefined, (v) => (isBase64(v) ? undefined : value(`'${clip(v)}' is not valid base64Binary`))),
  date: str('date', DATE_RE, dateDay('date')),
  dateTime: str('dateTime', DATETIME_RE, dateDay('dateTime')),
  instant: str('instant', INSTANT_RE, dateDay('instant')),
  time: str('time', TIME_RE),
  // The narrative's content rules (txt-1, txt-2) are checked by narrative.ts.
  xhtml: str('xhtml', undefined),
};

/**
 * The R4 regex `(\s*([0-9a-zA-Z\+/=]){4}\s*)+` as a loop: whitespace only between groups of
 * four characters (a regex backtracks badly on megabyte attachments).
 */
const BASE64_PLAIN_RE = /^[A-Za-z0-9+/=]+$/;

function isBase64(v: string): boolean {
  // The common case, no whitespace at all: whole groups of four (a regex without backtracking).
  if (v.length % 4 === 0 && BASE64_PLAIN_RE.test(v)) return true;
  let inGroup = 0;
  let groups = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) {
      if (inGroup !== 0) return false;
      continue;
    }
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 43 || c === 47 || c === 61;
    if (!ok) return false;
    inGroup = (inGroup + 1) & 3;
    if (inGroup === 0) groups++;
  }
  return inGroup === 0 && groups > 0;
}

/** A warning for strings that the specification says SHOULD NOT hold control characters. */
export function controlCharacterWarning(v: string): string | undefined {
  return CONTROL_RE.test(v) ? 'the string contains control characters (below U+0020 other than tab, CR, LF)' : undefined;
}

export function isPrimitiveType(code: string): boolean {
  return Object.prototype.hasOwnProperty.call(PRIMITIVE_CHECKS, code);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string '${clip(v)}'`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

export function clip(v: string): string {
  return v.length > 60 ? v.slice(0, 57) + '...' : v;
}
