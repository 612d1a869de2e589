// Property tests for the JSON parser differentials parseJsonBody refuses: any object, with one
// key written twice in any object at any depth, is refused with a 400 OperationOutcome whose
// expression is that key's path; the same objects without the repetition are accepted and
// read as written; numbers are accepted exactly when a double holds them.

import fc from 'fast-check';
import { parseJsonBody } from '../../src/fhir/body';
import { FhirError } from '../../src/fhir/outcome';

const limits = { maxDepth: 64 };
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function refusal(f: () => unknown): FhirError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  return undefined;
}

const identifier = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,7}$/).filter((k) => !FORBIDDEN.has(k));
const leaf: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 12 }).filter((s) => !s.includes('\u0000')),
);

function tree(key: fc.Arbitrary<string>): fc.Arbitrary<{ [key: string]: Json }> {
  const { object } = fc.letrec<{ value: Json; array: Json[]; object: { [key: string]: Json } }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(key, tie('value'), { maxKeys: 5 }),
  }));
  return object;
}

/** A member's path as fhirguard names it. */
function step(path: string, key: string): string {
  const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : `\`${key.replace(/[`\\]/g, '\\$&')}\``;
  return path ? `${path}.${name}` : name;
}

interface Repeat {
  /** Which object, counting in document order from 0 (taken modulo the number of objects). */
  target: number;
  /** Which of its keys is written again (modulo its size; an empty object gets `fresh` twice). */
  keyIndex: number;
  fresh: string;
  /** Where among the members the second copy goes (modulo). */
  at: number;
  value: Json;
  /** Spell the repeated key with \u escapes, so the two copies differ as text. */
  escaped: boolean;
}

function countObjects(v: Json): number {
  if (Array.isArray(v)) return v.reduce<number>((n, x) => n + countObjects(x), 0);
  if (v !== null && typeof v === 'object') return 1 + Object.values(v).reduce<number>((n, x) => n + countObjects(x), 0);
  return 0;
}

/** Every UTF-16 unit as a \u escape (a pair for characters beyond the BMP). */
const escapeKey = (k: string): string => `"${Array.from({ length: k.length }, (_, i) => `\\u${k.charCodeAt(i).toString(16).padStart(4, '0')}`).join('')}"`;

/** JSON text of `root` with one key written twice in the chosen object; returns the path too. */
function withRepeat(root: { [key: string]: Json }, r: Repeat): { text: string; path: string } {
  const target = r.target % countObjects(root);
  let seen = -1;
  let path = '';
  const write = (v: Json, at: string): string => {
    if (Array.isArray(v)) return `[${v.map((x, i) => write(x, `${at}[${i}]`)).join(',')}]`;
    if (v === null || typeof v !== 'object') return JSON.stringify(v);
    const index = ++seen;
    const members = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${write(x, step(at, k))}`);
    if (index === target) {
      const keys = Object.keys(v);
      const key = keys.length ? keys[r.keyIndex % keys.length] : r.fresh;
      if (!keys.length) members.push(`${JSON.stringify(key)}:null`);
      path = step(at, key);
      members.splice(r.at % (members.length + 1), 0, `${r.escaped ? escapeKey(key) : JSON.stringify(key)}:${JSON.stringify(r.value)}`);
    }
    return `{${members.join(',')}}`;
  };
  return { text: write(root, ''), path };
}

const repeat: fc.Arbitrary<Repeat> = fc.record({
  target: fc.nat(),
  keyIndex: fc.nat(),
  fresh: identifier,
  at: fc.nat(),
  value: leaf,
  escaped: fc.boolean(),
});

describe('a key written twice in one object', () => {
  test('is refused with 400 naming its path, at any depth (identifier keys)', () => {
    fc.assert(
      fc.property(tree(identifier), repeat, (root, r) => {
        const { text, path } = withRepeat(root, r);
        const e = refusal(() => parseJsonBody(Buffer.from(text), limits));
        expect(e).toBeDefined();
        expect(e?.status).toBe(400);
        expect(e?.reason).toBe('duplicate-key');
        expect(e?.issues[0]).toMatchObject({ severity: 'error', code: 'structure', expression: [path] });
        expect(e?.issues[0].diagnostics).toContain(path);
      }),
      { numRuns: 500 },
    );
  });

  test('is refused whatever the keys hold (any Unicode, quotes, backslashes)', () => {
    const anyKey = fc.string({ unit: 'binary', maxLength: 6 }).filter((k) => !FORBIDDEN.has(k) && !k.includes('\u0000'));
    fc.assert(
      fc.property(tree(anyKey), repeat, (root, r) => {
        const { text, path } = withRepeat(root, r);
        const e = refusal(() => parseJsonBody(Buffer.from(text), limits));
        expect(e?.reason).toBe('duplicate-key');
        expect(e?.issues[0].expression).toEqual([path]);
      }),
      { numRuns: 300 },
    );
  });

  test('the same objects written once each are accepted and read as written', () => {
    fc.assert(
      fc.property(tree(fc.string({ maxLength: 6 }).filter((k) => !FORBIDDEN.has(k) && !k.includes('\u0000'))), (root) => {
        const text = JSON.stringify(root);
        expect(parseJsonBody(Buffer.from(text), limits)).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });
});

describe('numbers', () => {
  test('every double, as JSON.stringify writes it, is accepted, alone, in arrays and in arrays of arrays', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
        const n = JSON.stringify(d);
        expect(parseJsonBody(Buffer.from(`{"a":${n},"b":[${n},1],"c":[[${n}]]}`), limits)).toEqual({ a: d === 0 ? 0 : d, b: [d === 0 ? 0 : d, 1], c: [[d === 0 ? 0 : d]] });
      }),
      { numRuns: 1000 },
    );
  });

  test('a decimal with more significant digits than its double is refused', () => {
    // 17 significant digits of a double, then more digits that are not all zero: a value no
    // double holds, so JSON.parse rounds it while a BigDecimal reader keeps it.
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true, min: 1e-300, max: 1e300 }), fc.stringMatching(/^[0-9]{0,6}[1-9]$/), (d, extra) => {
        const [mantissa, exponent] = d.toExponential(16).split('e');
        const literal = `${mantissa}${extra}e${exponent}`;
        const e = refusal(() => parseJsonBody(Buffer.from(`{"valueDecimal":${literal}}`), limits));
        expect(e?.reason).toBe('imprecise-number');
        expect(e?.status).toBe(400);
      }),
      { numRuns: 500 },
    );
  });
});
