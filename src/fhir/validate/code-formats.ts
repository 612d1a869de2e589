// The syntax of codes from systems fhirguard cannot look codes up in (no terminology server):
// LOINC (digits, a hyphen and the Mod 10 check digit), SNOMED CT concept ids (6 to 18 digits,
// a partition and a Verhoeff check digit; expressions are not judged), BCP-47 language tags,
// MIME types (BCP-13), ISO 4217 currencies and ISO 3166 countries. Keyed by code system, for
// Codings, and by value set, for `code` elements bound to a value set of such a system.
// A check digit that does not fit is kept apart from bad syntax: the code is well formed but
// names nothing, which codings.ts treats like a code missing from a shipped code system.

/** Why `code` does not have the system's syntax, or null. */
export type CodeFormat = (code: string) => string | null;

export interface SystemFormat {
  syntax: CodeFormat;
  /** For a code of the right syntax: why it cannot exist (a wrong check digit), or null. */
  checkDigit?: CodeFormat;
}

const LOINC_RE = /^(\d{1,7})-(\d)$/;
const LOINC_PART_RE = /^L[A-Z]\d{1,8}-\d$/;

/** LOINC's check digit: the Luhn (Mod 10) check digit of the number part. */
function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = digits.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

function loinc(code: string): string | null {
  return LOINC_RE.test(code) || LOINC_PART_RE.test(code) ? null : `'${clip(code)}' is not a LOINC code (digits, a hyphen and a check digit)`;
}

function loincCheckDigit(code: string): string | null {
  const m = LOINC_RE.exec(code);
  if (!m) return null;
  const want = luhnCheckDigit(m[1]);
  return want === Number(m[2]) ? null : `'${code}' has the wrong LOINC check digit (expected ${want})`;
}

// Verhoeff's dihedral group tables.
const D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
  [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
  [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
  [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
  [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
  [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
  [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
  [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
  [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
  [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
  [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
  [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

function verhoeffValid(digits: string): boolean {
  let c = 0;
  for (let i = 0; i < digits.length; i++) c = D[c][P[i % 8][digits.charCodeAt(digits.length - 1 - i) - 48]];
  return c === 0;
}

const SCTID_RE = /^[1-9]\d{5,17}$/;
/** Partition identifiers of concepts, descriptions and relationships (short and long format). */
const SCT_PARTITIONS = new Set(['00', '01', '02', '10', '11', '12']);

function snomed(code: string): string | null {
  // Post-coordinated expressions (`123:{...}`, `a + b`, with |terms| of any text) and the
  // legacy SNOMED RT ids an R4 example uses (`T-15460`) are not judged beyond holding digits.
  if (!/^\d+$/.test(code)) return /\d/.test(code) ? null : `'${clip(code)}' is not a SNOMED CT identifier or expression`;
  if (!SCTID_RE.test(code)) return `'${clip(code)}' is not a SNOMED CT identifier (6 to 18 digits, no leading zero)`;
  if (!SCT_PARTITIONS.has(code.slice(-3, -1))) return `'${code}' has no valid SNOMED CT partition identifier`;
  return null;
}

function snomedCheckDigit(code: string): string | null {
  return !/^\d+$/.test(code) || verhoeffValid(code) ? null : `'${code}' has the wrong SNOMED CT check digit`;
}

// RFC 5646 (BCP 47) language tags, syntax only; grandfathered irregular tags too.
const BCP47_RE =
  /^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|\d{3}))?(?:-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?|[Xx](?:-[A-Za-z0-9]{1,8})+|[Ii]-[A-Za-z]{2,8}|[Ee][Nn]-[Gg][Bb]-[Oo][Ee][Dd]|[Ss][Gg][Nn]-[A-Za-z]{2}-[A-Za-z]{2})$/;

function bcp47(code: string): string | null {
  return BCP47_RE.test(code) ? null : `'${clip(code)}' is not a BCP-47 language tag (e.g. 'en', 'nl-NL')`;
}

// RFC 6838 type/subtype; parameters are only delimited (R4 examples leave spaces unquoted).
const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const MIME_RE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;[^;]+)*$`);

function mime(code: string): string | null {
  return MIME_RE.test(code) ? null : `'${clip(code)}' is not a MIME type (type/subtype)`;
}

/** A MIME type, or one of the short names (xml, json, ttl) the definitions of some elements allow. */
function formatOrMime(code: string): string | null {
  return code === 'xml' || code === 'json' || code === 'ttl' ? null : mime(code);
}

function currency(code: string): string | null {
  return /^[A-Z]{3}$/.test(code) ? null : `'${clip(code)}' is not an ISO 4217 currency code (three capital letters)`;
}

function country(code: string): string | null {
  return /^(?:[A-Z]{2}|[A-Z]{3}|\d{3})$/.test(code) ? null : `'${clip(code)}' is not an ISO 3166 country code`;
}

function clip(v: string): string {
  return v.length > 60 ? v.slice(0, 57) + '...' : v;
}

/** By Coding.system. */
export const FORMATS_BY_SYSTEM: ReadonlyMap<string, SystemFormat> = new Map<string, SystemFormat>([
  ['http://loinc.org', { syntax: loinc, checkDigit: loincCheckDigit }],
  ['http://snomed.info/sct', { syntax: snomed, checkDigit: snomedCheckDigit }],
  ['urn:ietf:bcp:47', { syntax: bcp47 }],
  ['urn:ietf:bcp:13', { syntax: mime }],
  ['urn:iso:std:iso:4217', { syntax: currency }],
  ['urn:iso:std:iso:3166', { syntax: country }],
]);

/** By element path, where the element's definition widens its binding. */
export const FORMATS_BY_PATH: ReadonlyMap<string, CodeFormat> = new Map([
  ['CapabilityStatement.format', formatOrMime],
  ['TestScript.setup.action.operation.accept', formatOrMime],
  ['TestScript.setup.action.operation.contentType', formatOrMime],
  ['TestScript.setup.action.assert.contentType', formatOrMime],
]);

/** By the value set a `code` element is bound to (when its codes cannot be listed offline). */
export const FORMATS_BY_VALUE_SET: ReadonlyMap<string, CodeFormat> = new Map([
  ['http://hl7.org/fhir/ValueSet/mimetypes', mime],
  ['http://hl7.org/fhir/ValueSet/languages', bcp47],
  ['http://hl7.org/fhir/ValueSet/all-languages', bcp47],
  ['http://hl7.org/fhir/ValueSet/currencies', currency],
]);
