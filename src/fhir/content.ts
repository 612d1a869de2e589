// Content negotiation for fhirguard's JSON-only FHIR front door (R4 http.html §3.1.0.1.5):
// what a client may ask to receive (Accept, `_format`) and what it may send (Content-Type).
// Accept is negotiated by `negotiator` (q-values, wildcards, specificity); Content-Type is
// parsed by `fast-content-type-parse` (the parser Fastify itself uses).

import Negotiator from 'negotiator';
import { parse as parseContentType } from 'fast-content-type-parse';
import type { Interaction } from './interaction';
import { refuse, type FhirError } from './outcome';
import { shown } from './path';

/** JSON media types that mean a FHIR resource (`application/json+fhir` is the pre-R3 spelling clients still send). */
const FHIR_JSON: ReadonlySet<string> = new Set(['application/fhir+json', 'application/json', 'application/json+fhir']);

/**
 * What fhirguard can produce, spelled with every parameter a client may put on an Accept
 * range: a range whose parameters differ (fhirVersion=3.0, charset=latin1) then matches none.
 */
const PRODUCED = [...FHIR_JSON].map((t) => `${t}; fhirversion=4.0; charset=utf-8`);

/** `_format` values that ask for JSON (R4 lists `json` and the mime types). */
const FORMAT_JSON: ReadonlySet<string> = new Set(['json', ...FHIR_JSON]);

/** Longer than any real Accept, Content-Type or `_format`: refused before parsing. */
const MAX_HEADER = 1024;

function notAcceptable(diagnostics: string): FhirError {
  return refuse(406, 'not-acceptable', 'not-supported', `${diagnostics}; fhirguard serves FHIR R4 as JSON only (application/fhir+json)`);
}

function unsupported(diagnostics: string): FhirError {
  return refuse(415, 'unsupported-media-type', 'not-supported', diagnostics);
}

/** Reads a `_format` value: a short name or a mime type, possibly with parameters. */
function formatIsJson(format: string): boolean {
  // An unencoded '+' in a query reads as a space (`application/fhir json`): take it back.
  const value = format.trim().replace(/([A-Za-z]) ([A-Za-z])/g, '$1+$2');
  if (FORMAT_JSON.has(value.toLowerCase())) return true;
  if (!value.includes('/')) return false;
  let parsed: ReturnType<typeof parseContentType>;
  try {
    parsed = parseContentType(value);
  } catch {
    return false;
  }
  const version = parsed.parameters.fhirversion;
  const charset = parsed.parameters.charset;
  return FHIR_JSON.has(parsed.type) && (version === undefined || version === '4.0') && (charset === undefined || charset.toLowerCase() === 'utf-8');
}

/**
 * Throws 406 unless the client accepts FHIR JSON. `_format` (the query parameter's value)
 * overrides Accept, as R4 specifies (an empty `_format` is ignored); an absent or empty
 * Accept accepts anything.
 */
export function negotiateResponse(accept: string | undefined, format: string | undefined): void {
  if (format !== undefined && format.trim() !== '') {
    if (format.length > MAX_HEADER || !formatIsJson(format)) throw notAcceptable(`_format '${shown(format)}' is not acceptable`);
    return;
  }
  if (accept === undefined || accept.trim() === '') return;
  if (accept.length > MAX_HEADER) throw notAcceptable(`the Accept header is longer than ${MAX_HEADER} characters`);
  if (!acceptsFhirJson(accept)) throw notAcceptable(`Accept '${shown(accept)}' does not include FHIR JSON`);
}

/**
 * Verdicts per Accept value seen. A FHIR client sends the same Accept on every request and a
 * service sees a handful of distinct ones, so negotiation (negotiator parses the header
 * and ranks every produced type) runs once per value instead of once per request.
 * Bounded: a client sending endless distinct values empties it, and pays negotiation itself.
 */
const acceptVerdicts = new Map<string, boolean>();
const MAX_ACCEPT_VERDICTS = 512;

function acceptsFhirJson(accept: string): boolean {
  let verdict = acceptVerdicts.get(accept);
  if (verdict === undefined) {
    verdict = new Negotiator({ headers: { accept } }).mediaTypes(PRODUCED).length > 0;
    if (acceptVerdicts.size >= MAX_ACCEPT_VERDICTS) acceptVerdicts.clear();
    acceptVerdicts.set(accept, verdict);
  }
  return verdict;
}

type BodyFormat = 'json' | 'patch' | 'form' | 'optional-json' | 'none';

/** What body, if any, an interaction carries, by its kind and HTTP method. */
function bodyFormat(method: string, i: Interaction): BodyFormat {
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE') return 'none';
  switch (i.kind) {
    case 'create':
    case 'update':
    case 'batch':
    case 'transaction':
      return 'json';
    case 'patch':
      return 'patch';
    case 'search-type':
    case 'search-system':
      return 'form';
    case 'operation':
      return 'optional-json';
    default:
      return 'none';
  }
}

function checkJson(type: string, parameters: Record<string, string>, raw: string, allowed: ReadonlySet<string>, what: string): void {
  if (!allowed.has(type)) throw unsupported(`Content-Type '${shown(raw)}' is not accepted for ${what}; use ${[...allowed].join(' or ')}`);
  const charset = parameters.charset;
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') throw unsupported(`charset '${shown(charset)}' is not accepted; FHIR JSON is UTF-8`);
  const version = parameters.fhirversion;
  if (version !== undefined && version !== '4.0') throw unsupported(`fhirVersion '${shown(version)}' is not served here; this is FHIR R4 (4.0)`);
}

const PATCH_TYPES: ReadonlySet<string> = new Set(['application/json-patch+json', 'application/fhir+json']);
const FORM_TYPES: ReadonlySet<string> = new Set(['application/x-www-form-urlencoded']);

/**
 * Throws 415 when the request's Content-Type does not fit the interaction: resources,
 * batches and transactions need FHIR JSON (charset utf-8 only); PATCH takes JSON Patch
 * (application/json-patch+json) or FHIRPath Patch (application/fhir+json); POST `_search`
 * takes a form. POST `_search` and POST operations may come without a body, so for them an
 * absent Content-Type passes: the caller must refuse a non-empty body that has none.
 */
export function checkRequestContentType(method: string, contentType: string | undefined, interaction: Interaction, hasBody = false): void {
  const upper = method.toUpperCase();
  const format = bodyFormat(upper, interaction);
  if (format === 'none') return;
  const what = interaction.kind === 'operation' ? `operation ${interaction.operation}` : `${upper} ${interaction.kind}`;
  if (contentType === undefined || contentType.trim() === '') {
    // Only an empty body may leave its type unsaid: one whose type is unknown is checked by
    // nothing and would be forwarded as it came.
    if ((format === 'form' || format === 'optional-json') && !hasBody) return;
    throw unsupported(`${what} with a body needs a Content-Type (${format === 'form' ? 'application/x-www-form-urlencoded' : 'application/fhir+json'})`);
  }
  if (contentType.length > MAX_HEADER) throw unsupported(`Content-Type is longer than ${MAX_HEADER} characters`);
  let parsed: ReturnType<typeof parseContentType>;
  try {
    parsed = parseContentType(contentType);
  } catch {
    throw unsupported(`Content-Type '${shown(contentType)}' is not a valid media type`);
  }
  const params = parsed.parameters as Record<string, string>;
  if (format === 'patch') checkJson(parsed.type, params, contentType, PATCH_TYPES, what);
  else if (format === 'form') checkJson(parsed.type, params, contentType, FORM_TYPES, what);
  else checkJson(parsed.type, params, contentType, FHIR_JSON, what);
}
