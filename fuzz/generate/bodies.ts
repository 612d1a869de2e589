// Request bodies: valid resources from a few templates, then mutated the ways JSON readers
// disagree on or a validator may miss (duplicate keys at any depth, deep nesting, wrong
// types, bytes that are not UTF-8, numbers no double holds, lone surrogates, NUL, inherited
// names as keys, a BOM, trailing bytes), and content codings (gzip, deflate, br, a coding
// announced for a plain body).

import fc from 'fast-check';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { OBJECT_PROTOTYPE_NAMES, TYPES } from './names';
import { sometimes } from './sometimes';

const NARRATIVE = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' };

function template(type: string): Record<string, unknown> {
  switch (type) {
    case 'Patient':
      return { resourceType: 'Patient', active: true, name: [{ family: 'Doe', given: ['Jo'] }], gender: 'female', birthDate: '1970-01-01' };
    case 'Observation':
      return {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] },
        subject: { reference: 'Patient/1' },
        valueQuantity: { value: 5.5, unit: 'mg' },
      };
    case 'Practitioner':
      return { resourceType: 'Practitioner', active: true, name: [{ family: 'Who' }] };
    case 'Encounter':
      return { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: 'Patient/1' } };
    default:
      return { resourceType: type, text: NARRATIVE };
  }
}

const entryArb = fc.oneof(
  fc.constantFrom('Patient', 'Observation').map((t) => ({ resource: template(t), request: { method: 'POST', url: t } })),
  fc.constantFrom('Practitioner/1', 'Practitioner?name=x', 'Patient/1', 'Patient?_include=Patient:general-practitioner', 'Practitioner/1/_history').map((url) => ({ request: { method: 'GET', url } })),
  fc.constantFrom('Patient/1', 'Observation?code=x').map((url) => ({ request: { method: 'DELETE', url } })),
);

const bundleArb = fc
  .tuple(fc.constantFrom('transaction', 'batch', 'collection', 'searchset'), fc.array(entryArb, { minLength: 1, maxLength: 3 }))
  .map(([type, entry]) => ({ resourceType: 'Bundle', type, entry }));

const patchArb = fc.constantFrom(
  [{ op: 'replace', path: '/active', value: false }],
  [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }],
  [{ op: 'add', path: '/__proto__/x', value: 1 }],
  {
    resourceType: 'Parameters',
    parameter: [
      {
        name: 'operation',
        part: [
          { name: 'type', valueCode: 'replace' },
          { name: 'path', valueString: 'Patient.active' },
          { name: 'value', valueBoolean: false },
        ],
      },
    ],
  },
);

/** A JSON document for a resource of `type` (or a Bundle, or a patch). */
export function documentArb(type: string): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 6, arbitrary: fc.constant(template(TYPES.includes(type) ? type : 'Patient')) }, { weight: 2, arbitrary: bundleArb }, { weight: 1, arbitrary: patchArb });
}

type TextMutation = (s: string) => string;

const textMutations: fc.Arbitrary<TextMutation> = fc.constantFrom<TextMutation>(
  (s) => s.replace('{', '{"resourceType":"Practitioner",'),
  (s) => s.replace(/}$/, ',"resourceType":"Practitioner"}'),
  (s) => s.replace(/"active":(true|false)/, '"active":true,"active":false'),
  (s) => s.replace(/\{"family"/, '{"family":"A","family"'),
  (s) => s.replace(/"resourceType"/, '"resourc\\u0065Type"'),
  (s) => s.replace('{', `{"__proto__":{"resourceType":"Practitioner"},`),
  (s) => s.replace('{', '{"constructor":{"prototype":{"x":1}},'),
  (s) => s.replace(/"active":(true|false)/, '"active":"true"'),
  (s) => s.replace(/"name":\[/, '"name":{"x":['),
  (s) => s.replace(/5\.5/, '1e400'),
  (s) => s.replace(/5\.5/, '123456789012345678901234567890'),
  (s) => s.replace(/5\.5/, '5.50000000000000000001'),
  (s) => s.replace(/"Doe"/, '"D\\ud800oe"'),
  (s) => s.replace(/"Doe"/, '"D\\u0000oe"'),
  (s) => s.replace(/"Doe"/, '"D\u202eoe"'),
  (s) => `\ufeff${s}`,
  (s) => `${s}{"resourceType":"Practitioner"}`,
  (s) => `${s}\u0000`,
  (s) => s.slice(0, Math.max(1, s.length - 3)),
  (s) => s.replace('{', `{"x":${'['.repeat(300)}${']'.repeat(300)},`),
  (s) => s.replace('{', `{"x":${'{"a":'.repeat(120)}1${'}'.repeat(120)},`),
  (s) => s.replace(/"status":"[a-z]+"/, `"status":"${'a'.repeat(70_000)}"`),
  (s) => s.replace(/"Patient\/1"/, '"Practitioner/1"'),
  () => '',
  () => 'null',
  () => '[]',
  () => '"Patient"',
);

type ByteMutation = (b: Buffer) => Buffer;

const byteMutations: fc.Arbitrary<ByteMutation> = fc.constantFrom<ByteMutation>(
  (b) => Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xff]), b.subarray(b.length >> 1)]),
  (b) => Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xc3, 0x28]), b.subarray(b.length >> 1)]),
  (b) => Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xed, 0xa0, 0x80]), b.subarray(b.length >> 1)]),
  (b) => Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xc0, 0xa2]), b.subarray(b.length >> 1)]),
  (b) => Buffer.from(b.toString('utf8'), 'utf16le'),
);

export interface EncodedBody {
  bytes: Buffer;
  /** The Content-Encoding to announce, if any. */
  encoding?: string;
}

const codings: fc.Arbitrary<(b: Buffer) => EncodedBody> = fc.oneof(
  { weight: 12, arbitrary: fc.constant((b: Buffer) => ({ bytes: b })) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      (b: Buffer) => ({ bytes: gzipSync(b), encoding: 'gzip' }),
      (b: Buffer) => ({ bytes: deflateSync(b), encoding: 'deflate' }),
      (b: Buffer) => ({ bytes: brotliCompressSync(b), encoding: 'br' }),
      (b: Buffer) => ({ bytes: gzipSync(gzipSync(b)), encoding: 'gzip, gzip' }),
      (b: Buffer) => ({ bytes: gzipSync(b), encoding: 'GZIP' }),
      (b: Buffer) => ({ bytes: b, encoding: 'gzip' }),
      (b: Buffer) => ({ bytes: b, encoding: 'identity' }),
      (b: Buffer) => ({ bytes: b, encoding: 'compress' }),
      (b: Buffer) => ({ bytes: gzipSync(b), encoding: 'x-gzip' }),
    ),
  },
);

export function bodyArb(type: string): fc.Arbitrary<EncodedBody> {
  return fc.tuple(documentArb(type), sometimes(textMutations, 3), sometimes(byteMutations, 10), codings).map(([doc, tm, bm, code]) => {
    let text = JSON.stringify(doc);
    if (tm) text = tm(text);
    let bytes: Buffer = Buffer.from(text, 'utf8');
    if (bm) bytes = bm(bytes);
    return code(bytes);
  });
}

export { OBJECT_PROTOTYPE_NAMES };
