// Query strings (and `_search` form bodies) as FHIR search parameters. Strict on encoding,
// because the policy decides on the parameters fhirguard sees and a worker must not be able
// to read a different set from the same bytes: every escape must be well formed, the decoded
// bytes valid UTF-8, no NUL or control characters anywhere. Lenient on FHIR shape: repeated
// parameters are legal (`date=ge2020&date=lt2021`) and kept in order; whether a name is a
// known parameter is the validate stage's business.

import type { SearchParam } from './interaction';
import { refuse, type FhirError } from './outcome';

/** More parameters than any real search uses: a bound on the work later stages do per request. */
export const MAX_PARAMS = 1000;

function badQuery(diagnostics: string): FhirError {
  return refuse(400, 'bad-query', 'invalid', diagnostics);
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * Decodes one `application/x-www-form-urlencoded` component (`+` is a space, as servlet
 * containers and URLSearchParams read it). `what` names the part in diagnostics.
 */
function decodeComponent(raw: string, what: string): string {
  let escapes = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 37 /* % */) {
      if (i + 2 >= raw.length || !isHex(raw.charCodeAt(i + 1)) || !isHex(raw.charCodeAt(i + 2))) {
        throw badQuery(`${what}: '%' must be followed by two hex digits`);
      }
      if (raw.charCodeAt(i + 1) === 48 && raw.charCodeAt(i + 2) === 48) throw badQuery(`${what}: NUL (%00) is not allowed`);
      escapes = true;
      i += 2;
    } else if (c === 43 /* + */) {
      escapes = true;
    } else if (c < 0x21 || c > 0x7e) {
      throw badQuery(`${what}: character 0x${c.toString(16)} must be percent-encoded`);
    }
  }
  if (!escapes) return raw;
  const spaced = raw.includes('+') ? raw.replace(/\+/g, ' ') : raw;
  let decoded: string;
  try {
    decoded = decodeURIComponent(spaced);
  } catch {
    // The escapes are well formed (checked above), so the bytes they spell are not UTF-8.
    throw badQuery(`${what}: percent-encoded bytes are not valid UTF-8`);
  }
  for (let i = 0; i < decoded.length; i++) {
    const c = decoded.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw badQuery(`${what}: control character 0x${c.toString(16)} is not allowed`);
  }
  return decoded;
}

/** Splits `subject:Patient.name` into name, modifier and chain (see SearchParam). */
function splitName(full: string): SearchParam {
  const colon = full.indexOf(':');
  const dot = full.indexOf('.');
  let name = full;
  let modifier: string | undefined;
  let chain: string | undefined;
  if (full.startsWith('_has:')) {
    // `_has:Observation:patient:code` is a reverse chain whose parts are all `:`-separated.
    name = '_has';
    modifier = full.slice(5);
  } else if (dot >= 0 && (colon < 0 || dot < colon)) {
    name = full.slice(0, dot);
    chain = full.slice(dot + 1);
  } else if (colon >= 0) {
    name = full.slice(0, colon);
    const rest = full.slice(colon + 1);
    const restDot = rest.indexOf('.');
    if (restDot >= 0) {
      modifier = rest.slice(0, restDot);
      chain = rest.slice(restDot + 1);
    } else {
      modifier = rest;
    }
  }
  if (name === '') throw badQuery(`parameter '${full}' has an empty name`);
  if (modifier === '') throw badQuery(`parameter '${full}' has an empty modifier`);
  if (chain !== undefined && (chain === '' || chain.startsWith('.') || chain.endsWith('.') || chain.includes('..'))) {
    throw badQuery(`parameter '${full}' has an empty chain element`);
  }
  const p: SearchParam = { name, value: '' };
  if (modifier !== undefined) p.modifier = modifier;
  if (chain !== undefined) p.chain = chain;
  return p;
}

/**
 * Parses a raw query string (without `?`) or form body into search parameters, in order.
 * Empty pieces (`a=1&&b=2`, a trailing `&`) are skipped; a piece without `=` has value ''.
 */
export function parseQuery(raw: string): SearchParam[] {
  const out: SearchParam[] = [];
  if (raw === '') return out;
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf('&', start);
    if (end < 0) end = raw.length;
    if (end > start) {
      if (out.length >= MAX_PARAMS) throw badQuery(`more than ${MAX_PARAMS} parameters`);
      const eq = raw.indexOf('=', start);
      const hasValue = eq >= 0 && eq < end;
      const rawName = raw.slice(start, hasValue ? eq : end);
      if (rawName === '') throw badQuery(`parameter ${out.length + 1} has an empty name`);
      const name = decodeComponent(rawName, `parameter name '${truncate(rawName)}'`);
      const p = splitName(name);
      p.value = hasValue ? decodeComponent(raw.slice(eq + 1, end), `value of '${truncate(name)}'`) : '';
      out.push(p);
    }
    start = end + 1;
  }
  return out;
}

function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}
