// What JSON.parse does not tell about a body's text, for body.ts: how many object members
// the text spells (fewer keys in the parsed value means a key was repeated, which JSON.parse
// resolves silently, last one wins, while other parsers keep the first or refuse), and
// whether every number literal reads the same as a double (what fhirguard validates) and as
// an exact decimal (what BigDecimal-reading servers such as HAPI store).
//
// One pass over text JSON.parse has already accepted, hopping from string to string with
// indexOf: the cost is a few character reads per string. A string followed by ':' is a
// member's key. A number right after a ':', or in an array of numbers there, is read; one
// anywhere else (in an array of arrays, in an array mixing numbers with other values) is
// not, which the caller sees by comparing the numbers found with the numbers parsed, and
// then scanNumbersEverywhere reads every character between strings. A number
// is looked at closely only when it is long or has an exponent.

export interface TextScan {
  /** Object members spelled in the text (keys, each followed by a ':'). */
  members: number;
  /** Number literals read (the ones that are members' values). */
  numbers: number;
  /** The first number literal a double does not hold exactly, if any. */
  unfaithfulNumber?: string;
}

/** Literals this short, with no exponent, have at most 15 significant digits: doubles hold them exactly. */
const SHORT_NUMBER = 15;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isNumberStart(c: number): boolean {
  return c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39);
}

/** The end of the number literal starting at `j`, and whether it has an exponent. */
function numberEnd(text: string, j: number): number {
  let k = j + 1;
  for (; k < text.length; k++) {
    const d = text.charCodeAt(k);
    if (!((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x2b || d === 0x2d || d === 0x65 || d === 0x45)) break;
  }
  return k;
}

/** Whether the literal in text[j, k) needs the exact test, and passes it. */
function numberOk(text: string, j: number, k: number): boolean {
  if (k - j <= SHORT_NUMBER) {
    let exponent = false;
    for (let x = j; x < k; x++) {
      const d = text.charCodeAt(x);
      if (d === 0x65 || d === 0x45) exponent = true;
    }
    if (!exponent) return true;
  }
  return faithfulToDouble(text.slice(j, k));
}

/** The index after the string whose opening quote is at `q`. */
function stringEnd(text: string, q: number): number {
  let e = text.indexOf('"', q + 1);
  while (text.charCodeAt(e - 1) === 0x5c && escaped(text, e)) e = text.indexOf('"', e + 1);
  return e + 1;
}

/** Scans JSON text that JSON.parse accepted: members, and the numbers that are members' values. */
export function scanJsonText(text: string): TextScan {
  const n = text.length;
  let members = 0;
  let numbers = 0;
  let q = text.indexOf('"');
  while (q >= 0) {
    let i = stringEnd(text, q);
    let c = text.charCodeAt(i);
    // Most strings are followed at once by ':' (a key) or ',' (a value); skip whitespace only otherwise.
    if (c !== 0x3a && c !== 0x2c && isWhitespace(c)) {
      while (i < n && isWhitespace(text.charCodeAt(i))) i++;
      c = text.charCodeAt(i);
    }
    if (c === 0x3a /* : */) {
      members++;
      i++;
      while (i < n && isWhitespace(text.charCodeAt(i))) i++;
      c = text.charCodeAt(i);
      if (isNumberStart(c)) {
        const k = numberEnd(text, i);
        numbers++;
        if (!numberOk(text, i, k)) return { members, numbers, unfaithfulNumber: text.slice(i, k) };
        i = k;
      } else if (c === 0x5b /* [ */) {
        // An array of numbers (positiveInt lists such as Claim.item.diagnosisSequence).
        for (;;) {
          i++;
          while (i < n && isWhitespace(text.charCodeAt(i))) i++;
          c = text.charCodeAt(i);
          if (!isNumberStart(c)) break;
          const k = numberEnd(text, i);
          numbers++;
          if (!numberOk(text, i, k)) return { members, numbers, unfaithfulNumber: text.slice(i, k) };
          i = k;
          while (i < n && isWhitespace(text.charCodeAt(i))) i++;
          if (text.charCodeAt(i) !== 0x2c /* , */) break;
        }
      }
    }
    q = text.indexOf('"', i);
  }
  return { members, numbers };
}

/** Every number literal in the text, wherever it is; the first one a double does not hold exactly. */
export function scanNumbersEverywhere(text: string): string | undefined {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const q = text.indexOf('"', i);
    const gapEnd = q < 0 ? n : q;
    for (let j = i; j < gapEnd; j++) {
      if (isNumberStart(text.charCodeAt(j))) {
        const k = numberEnd(text, j);
        if (!numberOk(text, j, k)) return text.slice(j, k);
        j = k - 1;
      }
    }
    if (q < 0) break;
    i = stringEnd(text, q);
  }
  return undefined;
}

function escaped(text: string, quote: number): boolean {
  let k = quote - 1;
  while (text.charCodeAt(k) === 0x5c) k--;
  return (quote - 1 - k) % 2 === 1;
}

/** A JSON number literal as significant digits and a power of ten: '12.50e1' → '125e0'. */
export function canonicalDecimal(literal: string): string {
  let s = literal[0] === '-' ? literal.slice(1) : literal;
  let exp = 0;
  const e = s.search(/[eE]/);
  if (e >= 0) {
    exp = Number(s.slice(e + 1));
    s = s.slice(0, e);
  }
  const dot = s.indexOf('.');
  let digits = s;
  if (dot >= 0) {
    digits = s.slice(0, dot) + s.slice(dot + 1);
    exp -= s.length - dot - 1;
  }
  let a = 0;
  while (a < digits.length && digits.charCodeAt(a) === 0x30) a++;
  let b = digits.length;
  while (b > a && digits.charCodeAt(b - 1) === 0x30) b--;
  if (a === b) return '0';
  return `${digits.slice(a, b)}e${exp + (digits.length - b)}`;
}

/** Whether the double JSON.parse reads is exactly the decimal the literal spells. */
export function faithfulToDouble(literal: string): boolean {
  const v = Number(literal);
  if (!Number.isFinite(v)) return false;
  return canonicalDecimal(literal) === canonicalDecimal(String(Math.abs(v)));
}

/** A member's place in a body, FHIRPath-style: `entry[0].resource.id`. */
function step(path: string, key: string): string {
  const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `\`${key.replace(/[`\\]/g, '\\$&').slice(0, 80)}\``;
  return path ? `${path}.${name}` : name;
}

/**
 * The path of the first key repeated within one object, in text JSON.parse accepted and whose
 * depth was checked. Only called once a count showed there is one, so it may be slow.
 */
export function findDuplicateKey(text: string): { key: string; path: string } | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const str = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    const literal = text.slice(start, i);
    return literal.includes('\\') ? (JSON.parse(literal) as string) : literal.slice(1, -1);
  };
  const value = (path: string): { key: string; path: string } | undefined => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return undefined;
      }
      const seen = new Set<string>();
      for (;;) {
        ws();
        const key = str();
        const p = step(path, key);
        if (seen.has(key)) return { key, path: p };
        seen.add(key);
        ws();
        i++; // ':'
        const found = value(p);
        if (found) return found;
        ws();
        if (text[i++] !== ',') return undefined;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return undefined;
      }
      for (let k = 0; ; k++) {
        const found = value(`${path}[${k}]`);
        if (found) return found;
        ws();
        if (text[i++] !== ',') return undefined;
      }
    }
    if (c === '"') {
      str();
      return undefined;
    }
    while (i < text.length && !',]} \t\r\n'.includes(text[i])) i++;
    return undefined;
  };
  return value('');
}
