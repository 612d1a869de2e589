// parseJsonBody / parseJsonPatchBody: every bad body kind refused with 400 (including the ones
// JSON readers disagree on), every R4 example and Synthea bundle accepted.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJsonBody, parseJsonPatchBody } from '../../src/fhir/body';
import { FhirError } from '../../src/fhir/outcome';

const limits = { maxDepth: 32 };

function refusal(f: () => unknown): FhirError {
  try {
    f();
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('accepted');
}

function nested(depth: number): string {
  // depth levels in total: depth-1 arrays inside one object
  return `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
}

describe('parseJsonBody accepts resources', () => {
  it('returns the parsed object', () => {
    expect(parseJsonBody(Buffer.from('{"resourceType":"Patient","name":[{"family":"Dupré"}]}'), limits)).toEqual({
      resourceType: 'Patient',
      name: [{ family: 'Dupré' }],
    });
  });

  it('strips a UTF-8 byte order mark', () => {
    expect(parseJsonBody(Buffer.from('\ufeff{"resourceType":"Basic"}'), limits)).toEqual({ resourceType: 'Basic' });
  });

  it('accepts exactly maxDepth levels', () => {
    expect(parseJsonBody(Buffer.from(nested(32)), limits)).toBeDefined();
  });

  it('accepts what every JSON reader reads alike', () => {
    const same: [string, unknown][] = [
      ['{"a":-0,"b":-0.0,"c":0e5}', { a: -0, b: -0, c: 0 }],
      ['{"a":1E2,"b":1.50,"c":1e-7,"d":-12.5e-1}', { a: 100, b: 1.5, c: 1e-7, d: -1.25 }],
      [
        '{"a":3.5888283845385716,"b":0.30000000000000004,"c":9007199254740992,"d":1.7976931348623157e308}',
        { a: 3.5888283845385716, b: 0.30000000000000004, c: 9007199254740992, d: 1.7976931348623157e308 },
      ],
      ['{"a":[1,2,3],"b":[[1,2],[3]],"c":[1,"x",2.5]}', { a: [1, 2, 3], b: [[1, 2], [3]], c: [1, 'x', 2.5] }],
      ['{"a":"\\ud83d\\ude00","b":"\\\\ud800 and \\\\u0000 are text"}', { a: '\u{1F600}', b: '\\ud800 and \\u0000 are text' }],
      ['{"a":"x\\":y","b":{"c":"\\\\"},"d":":"}', { a: 'x":y', b: { c: '\\' }, d: ':' }],
      ['{ "a" : 1 , "b" :\n[ 2 ,3 ] }', { a: 1, b: [2, 3] }],
      ['{"a":{},"b":[],"c":{"a":{"a":1}}}', { a: {}, b: [], c: { a: { a: 1 } } }],
    ];
    for (const [text, value] of same) expect(parseJsonBody(Buffer.from(text), limits)).toEqual(value);
  });

  it('accepts every Synthea transaction bundle', () => {
    const synthea = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus', 'synthea');
    const files = fs.readdirSync(synthea).filter((f) => f.endsWith('.json') && f !== 'index.json');
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect((parseJsonBody(fs.readFileSync(path.join(synthea, f)), { maxDepth: 64 }) as { resourceType: string }).resourceType).toBe('Bundle');
  });

  it('accepts the forbidden words as values and inside longer keys', () => {
    const body = '{"resourceType":"Basic","text":{"div":"constructor __proto__ prototype"},"myconstructor":1,"__proto":2}';
    expect(parseJsonBody(Buffer.from(body), limits)).toMatchObject({ myconstructor: 1, __proto: 2 });
  });

  const dir = path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus', 'r4-examples', 'json');
  it('accepts every official R4 example (no false rejection)', () => {
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(900);
    const rejected: string[] = [];
    for (const f of files) {
      try {
        const r = parseJsonBody(fs.readFileSync(path.join(dir, f)), limits) as { resourceType?: string };
        if (typeof r.resourceType !== 'string') rejected.push(`${f}: no resourceType`);
      } catch (e) {
        rejected.push(`${f}: ${(e as Error).message}`);
      }
    }
    expect(rejected).toEqual([]);
  });
});

describe('parseJsonBody refuses bad bodies with 400', () => {
  const bad: [string, Buffer, string, RegExp][] = [
    ['invalid UTF-8 (lone continuation byte)', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d]), 'bad-encoding', /UTF-8/],
    ['invalid UTF-8 (latin-1 text)', Buffer.from('{"name":"Jos\xe9"}', 'latin1'), 'bad-encoding', /UTF-8/],
    ['invalid UTF-8 (overlong slash)', Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]), 'bad-encoding', /UTF-8/],
    ['invalid UTF-8 (encoded surrogate)', Buffer.from([0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x3a, 0x31, 0x7d]), 'bad-encoding', /UTF-8/],
    ['invalid UTF-8 (truncated at the end)', Buffer.from([0x7b, 0x7d, 0xe2, 0x82]), 'bad-encoding', /UTF-8/],
    ['UTF-16 text', Buffer.from('{"a":1}', 'utf16le'), 'bad-json', /not valid JSON/],
    ['empty body', Buffer.alloc(0), 'bad-json', /empty/],
    ['whitespace only', Buffer.from('  \n '), 'bad-json', /empty/],
    ['not JSON', Buffer.from('<Patient xmlns="http://hl7.org/fhir"/>'), 'bad-json', /not valid JSON/],
    ['truncated JSON', Buffer.from('{"resourceType":"Patient"'), 'bad-json', /not valid JSON/],
    ['trailing garbage', Buffer.from('{"a":1} x'), 'bad-json', /not valid JSON/],
    ['two documents', Buffer.from('{"a":1}{"b":2}'), 'bad-json', /not valid JSON/],
    ['top-level array', Buffer.from('[{"resourceType":"Patient"}]'), 'not-object', /object/],
    ['top-level string', Buffer.from('"Patient"'), 'not-object', /not string/],
    ['top-level number', Buffer.from('42'), 'not-object', /not number/],
    ['top-level null', Buffer.from('null'), 'not-object', /not null/],
    ['top-level true', Buffer.from('true'), 'not-object', /not boolean/],
    ['one level too deep', Buffer.from(nested(33)), 'too-deep', /deeper than 32/],
    ['very deep arrays', Buffer.from(`{"a":${'['.repeat(200000)}${']'.repeat(200000)}}`), 'too-deep', /deeper/],
    ['very deep objects', Buffer.from(`${'{"a":'.repeat(100000)}1${'}'.repeat(100000)}`), 'too-deep', /deeper/],
    ['__proto__ at the top', Buffer.from('{"__proto__":{"admin":true}}'), 'forbidden-key', /__proto__/],
    ['constructor at the top', Buffer.from('{"constructor":{"prototype":{"x":1}}}'), 'forbidden-key', /constructor/],
    ['prototype nested', Buffer.from('{"resourceType":"Patient","name":[{"prototype":1}]}'), 'forbidden-key', /prototype/],
    ['__proto__ deep in an array', Buffer.from('{"a":[[{"b":[{"__proto__":null}]}]]}'), 'forbidden-key', /__proto__/],
    ['__proto__ spelled with escapes', Buffer.from('{"a":{"\\u005f_proto__":{}}}'), 'forbidden-key', /__proto__/],
    ['constructor spelled with escapes', Buffer.from('{"\\u0063onstructor":1}'), 'forbidden-key', /constructor/],
    // Parser differentials: what JSON.parse reads one way and other readers another.
    [
      'resourceType twice (last wins in JSON.parse, first in others)',
      Buffer.from('{"resourceType":"Practitioner","id":"1","resourceType":"Patient"}'),
      'duplicate-key',
      /'resourceType'.*at resourceType/,
    ],
    ['a key repeated deep inside', Buffer.from('{"resourceType":"Patient","name":[{"given":["a"]},{"family":"x","family":"y"}]}'), 'duplicate-key', /'family'.*at name\[1\]\.family/],
    ['a key repeated with an escape', Buffer.from('{"resourceType":"Patient","active":true,"\\u0061ctive":false}'), 'duplicate-key', /'active'/],
    ['a repeated key holding objects', Buffer.from('{"a":{"b":1},"a":{"b":1}}'), 'duplicate-key', /'a'/],
    ['a repeated empty key', Buffer.from('{"x":[{"":1,"":2}]}'), 'duplicate-key', /x\[0\]\.``/],
    ['a number beyond the double range', Buffer.from('{"valueDecimal":1e400}'), 'imprecise-number', /1e400/],
    ['a negative number beyond the double range', Buffer.from('{"valueDecimal":-1.5E+309}'), 'imprecise-number', /-1\.5E\+309/],
    ['a number that underflows to zero', Buffer.from('{"valueDecimal":1e-400}'), 'imprecise-number', /1e-400/],
    ['a decimal with more digits than a double keeps', Buffer.from('{"valueDecimal":0.1000000000000000000001}'), 'imprecise-number', /0\.1000000000000000000001/],
    ['an integer above 2^53 (rounded by a double)', Buffer.from('{"valueInteger":9007199254740993}'), 'imprecise-number', /9007199254740993/],
    ['an integer-looking decimal that rounds to an integer', Buffer.from('{"valueInteger":0.99999999999999999}'), 'imprecise-number', /0\.99999999999999999/],
    ['an imprecise number in an array', Buffer.from('{"a":[1,2,12345678901234567890]}'), 'imprecise-number', /12345678901234567890/],
    ['an imprecise number in an array of arrays', Buffer.from('{"a":[[1],[2,3.00000000000000000001]]}'), 'imprecise-number', /3\.00000000000000000001/],
    ['an imprecise number after mixed values', Buffer.from('{"a":["x",{"b":1},1e999]}'), 'imprecise-number', /1e999/],
    ['a lone high surrogate', Buffer.from('{"name":[{"family":"x\\ud800"}]}'), 'bad-string', /lone surrogate/],
    ['a lone low surrogate', Buffer.from('{"name":[{"family":"\\uDC00x"}]}'), 'bad-string', /lone surrogate/],
    ['a surrogate pair in the wrong order', Buffer.from('{"a":"\\udc00\\ud800"}'), 'bad-string', /lone surrogate/],
    ['a lone surrogate in a key', Buffer.from('{"\\ud800":1}'), 'bad-string', /lone surrogate/],
    ['an escaped NUL', Buffer.from('{"resourceType":"Patient\\u0000Practitioner"}'), 'bad-string', /NUL/],
  ];

  it.each(bad)('%s', (_what, buf, reason, message) => {
    const e = refusal(() => parseJsonBody(buf, limits));
    expect(e.status).toBe(400);
    expect(e.reason).toBe(reason);
    expect(e.issues[0].diagnostics).toMatch(message);
    expect(e.issues[0].diagnostics.length).toBeLessThan(400);
  });

  it('names a repeated key in the issue expression', () => {
    const e = refusal(() => parseJsonBody(Buffer.from('{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Practitioner","resourceType":"Patient"}}]}'), limits));
    expect(e.issues[0]).toMatchObject({ severity: 'error', code: 'structure', expression: ['entry[0].resource.resourceType'] });
  });

  it('names a key that is no identifier in quotes', () => {
    const e = refusal(() => parseJsonBody(Buffer.from('{"a b":{"c`d":1,"c`d":2}}'), limits));
    expect(e.issues[0].expression).toEqual(['`a b`.`c\\`d`']);
  });

  it('does not let a __proto__ key reach Object.prototype', () => {
    refusal(() => parseJsonBody(Buffer.from('{"__proto__":{"polluted":true}}'), limits));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('honours a smaller maxDepth', () => {
    expect(parseJsonBody(Buffer.from('{"a":{"b":1}}'), { maxDepth: 2 })).toEqual({ a: { b: 1 } });
    expect(refusal(() => parseJsonBody(Buffer.from('{"a":{"b":[]}}'), { maxDepth: 2 })).reason).toBe('too-deep');
  });
});

describe('parseJsonPatchBody', () => {
  it('accepts a JSON Patch array', () => {
    const ops = [{ op: 'replace', path: '/active', value: false }];
    expect(parseJsonPatchBody(Buffer.from(JSON.stringify(ops)), limits)).toEqual(ops);
  });

  it('refuses an object with not-array', () => {
    const e = refusal(() => parseJsonPatchBody(Buffer.from('{"op":"remove","path":"/a"}'), limits));
    expect(e.status).toBe(400);
    expect(e.reason).toBe('not-array');
  });

  it('refuses a repeated key in a patch operation', () => {
    const e = refusal(() => parseJsonPatchBody(Buffer.from('[{"op":"test","path":"/a","value":1},{"op":"remove","path":"/b","op":"add","value":2}]'), limits));
    expect(e.reason).toBe('duplicate-key');
    expect(e.issues[0].expression).toEqual(['[1].op']);
  });

  it('applies the same key, depth and encoding checks', () => {
    expect(refusal(() => parseJsonPatchBody(Buffer.from('[{"op":"add","path":"/a","value":{"__proto__":{}}}]'), limits)).reason).toBe('forbidden-key');
    expect(refusal(() => parseJsonPatchBody(Buffer.from(`[${'['.repeat(40)}${']'.repeat(40)}]`), limits)).reason).toBe('too-deep');
    expect(refusal(() => parseJsonPatchBody(Buffer.from([0x5b, 0xff, 0x5d]), limits)).reason).toBe('bad-encoding');
  });
});
