// Character data in narrative XHTML (text and attribute values), checked and decoded the way
// both readers of a narrative will see it: an XML parser (the FHIR server's) and a browser's
// HTML parser (whoever displays it). The two agree only on a subset, which is all we accept:
//   - the five entities XML predefines (&lt; &gt; &amp; &quot; &apos;); FHIR narrative has no
//     DTD, so HTML's named references (&nbsp; &colon; &Tab; &NewLine; ...) are undefined to
//     an XML parser, while a browser decodes them;
//   - numeric references always closed by ';' (a browser also decodes '&#106' without it);
//   - characters XML allows, without C1 controls (a browser maps &#x80;-&#x9F; to
//     windows-1252 letters) and without NUL, surrogates or U+FFFE/U+FFFF.
// A value that passes decodes to one string, the same for both readers.

/** One reference at a '&': a predefined entity, or a decimal or hexadecimal reference. */
const REFERENCE_RE = /&(?:(lt|gt|amp|quot|apos)|#([0-9]+)|#x([0-9A-Fa-f]+));/y;

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Characters neither XML (Char production) nor a browser reads the same way, as typed. */
const BAD_CHARACTER_RE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** A cheap first look: any of those, or any surrogate (pairs are fine: the precise test decides). */
const MAYBE_BAD_RE = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uD800-\uDFFF\uFFFE\uFFFF]/;

export type Decoded = { value: string; problem?: undefined } | { value?: undefined; problem: string };

function allowedCodePoint(cp: number): boolean {
  if (cp === 0x9 || cp === 0xa || cp === 0xd) return true;
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
  if (cp >= 0xd800 && cp <= 0xdfff) return false;
  if (cp === 0xfffe || cp === 0xffff) return false;
  return cp <= 0x10ffff;
}

/** Checks the character references and characters of `raw` and returns it decoded. */
export function decodeCharacterData(raw: string): Decoded {
  if (MAYBE_BAD_RE.test(raw) && BAD_CHARACTER_RE.test(raw)) return { problem: 'a control character, lone surrogate or non-character' };
  let amp = raw.indexOf('&');
  if (amp < 0) return { value: raw };
  let out = '';
  let from = 0;
  while (amp >= 0) {
    REFERENCE_RE.lastIndex = amp;
    const m = REFERENCE_RE.exec(raw);
    if (!m) {
      const shown = raw.slice(amp, amp + 12).replace(/\s.*$/s, '');
      return { problem: `'${shown}' is not a reference XML defines (write &amp; for '&'; use the character itself or &#NNNN; instead of HTML's named references)` };
    }
    let ch: string;
    if (m[1] !== undefined) {
      ch = PREDEFINED[m[1]];
    } else {
      const digits = m[2] ?? m[3];
      const cp = digits.length > 8 && /[^0]/.test(digits.slice(0, -8)) ? -1 : parseInt(digits, m[2] !== undefined ? 10 : 16);
      if (!allowedCodePoint(cp)) return { problem: `'${m[0].slice(0, 16)}' refers to a character XML does not allow, or a control character` };
      ch = String.fromCodePoint(cp);
    }
    out += raw.slice(from, amp) + ch;
    from = REFERENCE_RE.lastIndex;
    amp = raw.indexOf('&', from);
  }
  return { value: out + raw.slice(from) };
}
