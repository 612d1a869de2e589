// UCUM unit expressions (the case-sensitive c/s syntax of ucum.org), as Quantity.code holds
// them when Quantity.system is http://unitsofmeasure.org. A code is valid when it parses as
//   term      := '/'? component (('.' | '/') component)*
//   component := '(' term ')' | annotation | factor | unit exponent? annotation?
//   unit      := atom | prefix metric-atom          exponent := [+-]? digits
// with atoms and prefixes from the UCUM table (ucum-units.ts); square-bracketed atoms
// (`[in_i]`, `mm[Hg]`) are read whole. No conversion or dimension analysis. A code that does
// not parse is an error; one that parses but names a unit UCUM does not define is only a
// warning, because the R4 examples and Synthea use such codes (`mcg`, `mEq`, `TAB`, `ea`)
// with the UCUM system, and both are accepted as valid.

import { UCUM_ATOMS, UCUM_PREFIXES } from './ucum-units';

const ATOMS: ReadonlyMap<string, boolean> = new Map(UCUM_ATOMS);
/** Longest prefixes first, so that `da` is tried before `d`. */
const PREFIXES = [...UCUM_PREFIXES].sort((a, b) => b.length - a.length);
export interface UcumVerdict {
  /** Not UCUM syntax: why. */
  error?: string;
  /** Syntax, but a unit UCUM does not define: which. */
  unknown?: string;
}

const VALID: UcumVerdict = {};
/** Codes seen (bounded: codes come from requests). */
const seen = new Map<string, UcumVerdict>();

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

class Parser {
  pos = 0;
  problem: string | null = null;
  /** The first symbol that is not a UCUM unit. */
  unknown: string | null = null;

  constructor(private readonly s: string) {}

  fail(why: string): false {
    this.problem ??= why;
    return false;
  }

  /** The whole expression. */
  main(): boolean {
    if (this.s.length === 0) return this.fail('empty');
    if (this.s.charCodeAt(0) === 47 /* / */) this.pos++;
    if (!this.term()) return false;
    return this.pos === this.s.length || this.fail(`unexpected '${this.s[this.pos]}' at ${this.pos + 1}`);
  }

  term(): boolean {
    if (!this.component()) return false;
    while (this.pos < this.s.length) {
      const c = this.s[this.pos];
      if (c !== '.' && c !== '/') return true;
      this.pos++;
      if (!this.component()) return false;
    }
    return true;
  }

  component(): boolean {
    const c = this.s[this.pos];
    if (c === undefined) return this.fail('a unit is missing at the end');
    if (c === '(') {
      this.pos++;
      if (!this.term()) return false;
      if (this.s[this.pos] !== ')') return this.fail(`')' expected at ${this.pos + 1}`);
      this.pos++;
      return true;
    }
    if (c === '{') return this.annotation();
    if (isDigit(c.charCodeAt(0)) && !this.s.startsWith('10*', this.pos) && !this.s.startsWith('10^', this.pos)) {
      while (this.pos < this.s.length && isDigit(this.s.charCodeAt(this.pos))) this.pos++;
      return true;
    }
    if (!this.unit()) return false;
    this.exponent();
    if (this.s[this.pos] === '{') return this.annotation();
    return true;
  }

  annotation(): boolean {
    const end = this.s.indexOf('}', this.pos + 1);
    if (end < 0) return this.fail("an annotation '{' is not closed");
    for (let i = this.pos + 1; i < end; i++) {
      const c = this.s.charCodeAt(i);
      if (c < 33 || c > 126 || c === 123) return this.fail('an annotation holds only printable ASCII characters');
    }
    this.pos = end + 1;
    return true;
  }

  exponent(): void {
    let p = this.pos;
    const sign = this.s[p];
    if (sign === '+' || sign === '-') p++;
    if (p < this.s.length && isDigit(this.s.charCodeAt(p))) {
      while (p < this.s.length && isDigit(this.s.charCodeAt(p))) p++;
      this.pos = p;
    }
  }

  /** A unit symbol: up to an operator, a parenthesis, an annotation or an exponent (brackets read whole). */
  unit(): boolean {
    const start = this.pos;
    let p = this.pos;
    // `10*` and `10^` are atoms that start with digits.
    if (this.s.startsWith('10*', p) || this.s.startsWith('10^', p)) p += 3;
    while (p < this.s.length) {
      const c = this.s[p];
      if (c === '[') {
        const end = this.s.indexOf(']', p);
        if (end < 0) return this.fail("a '[' is not closed");
        p = end + 1;
        continue;
      }
      if (c === '.' || c === '/' || c === '(' || c === ')' || c === '{' || c === '+' || c === '-' || isDigit(c.charCodeAt(0))) break;
      const code = c.charCodeAt(0);
      if (code < 33 || code > 126 || c === ']' || c === '}') return this.fail(`'${c}' cannot be part of a unit (at ${p + 1})`);
      p++;
    }
    const symbol = this.s.slice(start, p);
    if (!symbol) return this.fail(`a unit is missing at ${start + 1}`);
    if (!knownUnit(symbol)) this.unknown ??= symbol;
    this.pos = p;
    return true;
  }
}

function knownUnit(symbol: string): boolean {
  if (ATOMS.has(symbol)) return true;
  for (const prefix of PREFIXES) {
    if (symbol.length > prefix.length && symbol.startsWith(prefix) && ATOMS.get(symbol.slice(prefix.length)) === true) return true;
  }
  return false;
}

/** What is wrong with `code` as a UCUM expression (nothing for a valid one). */
export function checkUcum(code: string): UcumVerdict {
  const known = seen.get(code);
  if (known !== undefined) return known;
  const p = new Parser(code);
  let verdict = VALID;
  if (!p.main()) verdict = { error: p.problem ?? 'not UCUM syntax' };
  else if (p.unknown !== null) verdict = { unknown: p.unknown };
  if (seen.size < 10_000) seen.set(code, verdict);
  return verdict;
}
