// Codings without a terminology server (terminologies.html): the system is an absolute URI;
// in a code system the specification ships whole (HL7's, the v2 tables and v3 code systems)
// the code exists and the display, when given, is one the code system gives the code
// (compared without regard to case and spacing, designations included); in LOINC, SNOMED CT,
// BCP-47, MIME types, ISO 4217 and ISO 3166 the code has the system's syntax and check digit.
// A Coding that names a version is not judged against the code system fhirguard ships, which
// may be another version.
//
// How sure each verdict is: bad syntax is an error everywhere. A code that cannot exist
// (unknown in a shipped code system, a wrong check digit) is an error where the element's
// binding is required or extensible, and a warning under preferred, example or no binding:
// Synthea writes observation-category `vital-sign` on Observation.category (preferred) and an
// R4 example a SNOMED CT id with a wrong check digit under an example binding. A display that
// is not the code system's is a warning: Synthea writes its own displays throughout.

import { FORMATS_BY_SYSTEM } from './code-formats';
import { normaliseDisplay, type TypeRegistry } from './compiled';
import type { IssueSink } from './extensions';
import { clip } from './primitives';

type Json = Record<string, unknown>;

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

/** `strict`: the Coding is under a required or extensible binding. */
export function checkCoding(v: Json, sink: IssueSink, reg: TypeRegistry, strict: boolean): void {
  const system = v.system;
  if (typeof system !== 'string') return;
  if (!SCHEME_RE.test(system)) {
    sink.issue('error', 'value', `a Coding's system must be an absolute URI, not '${clip(system)}'`, '.system');
    return;
  }
  const code = v.code;
  if (typeof code !== 'string') return;
  const cs = v.version === undefined ? reg.codeSystem(system) : null;
  if (cs) {
    const concept = cs.concepts.get(cs.caseInsensitive ? code.toLowerCase() : code);
    if (!concept) {
      sink.issue(strict ? 'error' : 'warning', 'code-invalid', `'${clip(code)}' is not a code of ${system}`);
      return;
    }
    const display = v.display;
    const { names, normalised } = concept;
    if (typeof display === 'string' && names.length > 0 && !names.includes(display) && !normalised.includes(normaliseDisplay(display))) {
      sink.issue('warning', 'code-invalid', `'${clip(display)}' is not the display of ${system}#${clip(code)} (it is '${clip(names[0])}')`, '.display');
    }
    return;
  }
  const format = FORMATS_BY_SYSTEM.get(system);
  if (!format) return;
  const syntax = format.syntax(code);
  if (syntax) {
    sink.issue('error', 'code-invalid', syntax, '.code');
    return;
  }
  const digit = format.checkDigit?.(code);
  if (digit) sink.issue(strict ? 'error' : 'warning', 'code-invalid', digit, '.code');
}
