// The path grammar of the R4 RESTful API, below the FHIR base: splitting a raw path into
// decoded segments and telling ids, operation names and type names apart. Anything that could
// make fhirguard and a worker see different paths (dot segments, encoded slashes or
// backslashes, path parameters, NUL, double slashes) is refused here, before any decision.

import { refuse, type FhirError } from './outcome';

/** Longer than any path the grammar accepts (type + id + `_history` + vid + `$op` < 260). */
export const MAX_PATH_LENGTH = 1024;
/** `Type/id/_history/vid/$op` is the longest shape. */
export const MAX_SEGMENTS = 5;
/** FHIR R4 id and version id: `[A-Za-z0-9\-\.]{1,64}`. */
export const MAX_ID_LENGTH = 64;

export function badPath(diagnostics: string): FhirError {
  return refuse(400, 'bad-path', 'invalid', diagnostics);
}

export function unknownPath(path: string): FhirError {
  return refuse(404, 'unknown-path', 'not-found', `'${shown(path)}' is not a FHIR RESTful interaction path`);
}

/** A bounded, printable rendering of client input for diagnostics. */
export function shown(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}...` : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

function isIdChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
}

/** True for a FHIR id / version id. */
export function isId(s: string): boolean {
  if (s.length === 0 || s.length > MAX_ID_LENGTH) return false;
  for (let i = 0; i < s.length; i++) if (!isIdChar(s.charCodeAt(i))) return false;
  return true;
}

/** True for `$name` with a name of letters, digits, `-`, `_`, `.` starting with a letter. */
export function isOperationName(s: string): boolean {
  if (s.length < 2 || s.length > MAX_ID_LENGTH + 1 || s.charCodeAt(0) !== 36 /* $ */) return false;
  const first = s.charCodeAt(1);
  if (!((first >= 65 && first <= 90) || (first >= 97 && first <= 122))) return false;
  for (let i = 2; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isIdChar(c) && c !== 95 /* _ */) return false;
  }
  return true;
}

/** Shaped like a resource type name (so an unknown one is "unknown type", not "unknown path"). */
export function looksLikeTypeName(s: string): boolean {
  if (s.length === 0 || s.length > MAX_ID_LENGTH) return false;
  const first = s.charCodeAt(0);
  if (first < 65 || first > 90) return false;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122))) return false;
  }
  return true;
}

function decodeSegment(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw badPath(`path segment '${shown(raw)}' has a malformed percent-encoding`);
  }
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c === 47 || c === 92) throw badPath(`path segment '${shown(raw)}' encodes a slash or backslash`);
    if (c < 0x20 || c === 0x7f) throw badPath(`path segment '${shown(raw)}' encodes a control character`);
  }
  return decoded;
}

/**
 * Splits a raw path below the base (`/Patient/123`, `Patient/123`, '' or '/' for the base
 * itself) into decoded segments. Throws 400 bad-path for anything ambiguous and 404 for more
 * segments than any interaction has.
 */
export function pathSegments(rawPath: string): string[] {
  if (rawPath.length > MAX_PATH_LENGTH) throw badPath(`path is longer than ${MAX_PATH_LENGTH} characters`);
  const body = rawPath.charCodeAt(0) === 47 ? rawPath.slice(1) : rawPath;
  if (body === '') return [];
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c === 92) throw badPath('backslash in path');
    if (c === 59) throw badPath('path parameters (;) are not allowed');
    if (c < 0x21 || c > 0x7e) throw badPath(`character 0x${c.toString(16)} in path must not appear unencoded`);
  }
  // Decoded in place: the split's own array is the result (one allocation fewer per request).
  const segments = body.split('/');
  for (let i = 0; i < segments.length; i++) {
    const r = segments[i];
    if (r === '') throw badPath('empty path segment (double or trailing slash)');
    const s = r.includes('%') ? decodeSegment(r) : r;
    if (s === '.' || s === '..') throw badPath(`dot segment '${shown(r)}' in path`);
    segments[i] = s;
  }
  if (segments.length > MAX_SEGMENTS) throw unknownPath(rawPath);
  return segments;
}
