// Rules of datatypes that their invariants do not state (datatypes.html): an Attachment's
// size and hash agree with its data, an Identifier in the urn:ietf:rfc:3986 system holds a
// URI, a Quantity in UCUM has a UCUM code. One check per type name, looked up for every
// complex value the walker validates; each check only reads the value it is given.

import { createHash } from 'node:crypto';
import type { IssueSink } from './extensions';
import { checkUcum } from './ucum';

type Json = Record<string, unknown>;
type Check = (v: Json, sink: IssueSink) => void;

const UCUM = 'http://unitsofmeasure.org';
const RFC_3986 = 'urn:ietf:rfc:3986';
const ABSOLUTE_URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/;
const BARE_OID_RE = /^[0-2](\.(0|[1-9][0-9]*))+$/;

/** Attachment.size is the number of bytes of the data, Attachment.hash its SHA-1 (base64). */
function attachment(v: Json, sink: IssueSink): void {
  if (typeof v.data !== 'string' || (v.size === undefined && v.hash === undefined)) return;
  const data = Buffer.from(v.data, 'base64');
  if (typeof v.size === 'number' && v.size !== data.length) {
    sink.issue('error', 'value', `size ${v.size} does not match the data, which is ${data.length} bytes`, '.size');
  }
  if (typeof v.hash === 'string') {
    const hash = Buffer.from(v.hash, 'base64');
    // Only a base64 SHA-1 (20 bytes) can be compared. An R4 example writes the SHA-1 in hex
    // there (diagnosticreport-example-pgx): wrong, but not refused, so only a warning.
    if (hash.length !== 20) {
      sink.issue('warning', 'value', `hash is not a base64 SHA-1 (20 bytes), so it cannot be checked against the data`, '.hash');
      return;
    }
    const sha1 = createHash('sha1').update(data).digest();
    if (!sha1.equals(hash)) sink.issue('error', 'value', `hash does not match the data (its SHA-1 is ${sha1.toString('base64')})`, '.hash');
  }
}

/**
 * An identifier in the system urn:ietf:rfc:3986 is a URI (identifier-registry.html): a scheme
 * and no whitespace. Looser than it could be, because R4 examples (accepted as valid) write
 * bare OIDs (`2.16.840.1.113883.19.5`) and malformed urn:oid values there.
 */
function identifier(v: Json, sink: IssueSink): void {
  if (v.system !== RFC_3986 || typeof v.value !== 'string') return;
  const value = v.value;
  if (!ABSOLUTE_URI_RE.test(value) && !BARE_OID_RE.test(value)) sink.issue('error', 'value', `an identifier in the system ${RFC_3986} must be an absolute URI`, '.value');
}

/** A Quantity (or Age, Duration...) in UCUM has a code in UCUM's syntax. */
function quantity(v: Json, sink: IssueSink): void {
  if (v.system !== UCUM || typeof v.code !== 'string') return;
  const verdict = checkUcum(v.code);
  if (verdict.error) sink.issue('error', 'value', `'${v.code.slice(0, 60)}' is not a UCUM unit expression: ${verdict.error}`, '.code');
  else if (verdict.unknown) sink.issue('warning', 'value', `'${verdict.unknown.slice(0, 60)}' is not a unit UCUM defines`, '.code');
}

export const DATATYPE_CHECKS: ReadonlyMap<string, Check> = new Map<string, Check>([
  ['Attachment', attachment],
  ['Identifier', identifier],
  ...['Quantity', 'SimpleQuantity', 'MoneyQuantity', 'Age', 'Count', 'Distance', 'Duration'].map((t) => [t, quantity] as [string, Check]),
]);
