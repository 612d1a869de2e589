// parseQuery: FHIR search parameters out of a raw query string or form body.

import { MAX_PARAMS, parseQuery } from '../../src/fhir/query';
import { FhirError } from '../../src/fhir/outcome';

function refusal(raw: string): FhirError {
  try {
    parseQuery(raw);
  } catch (e) {
    return e as FhirError;
  }
  throw new Error(`parseQuery accepted ${JSON.stringify(raw)}`);
}

describe('parseQuery accepts FHIR queries', () => {
  it('returns nothing for an empty query', () => {
    expect(parseQuery('')).toEqual([]);
  });

  it('keeps repeated parameters in order', () => {
    expect(parseQuery('date=ge2020&date=lt2021&date=ne2020-06')).toEqual([
      { name: 'date', value: 'ge2020' },
      { name: 'date', value: 'lt2021' },
      { name: 'date', value: 'ne2020-06' },
    ]);
  });

  it('splits modifiers and chains', () => {
    expect(parseQuery('name:contains=ann&subject:Patient.name=x&subject.organization.name:exact=y')).toEqual([
      { name: 'name', modifier: 'contains', value: 'ann' },
      { name: 'subject', modifier: 'Patient', chain: 'name', value: 'x' },
      { name: 'subject', chain: 'organization.name:exact', value: 'y' },
    ]);
  });

  it('keeps a reverse chain whole as the modifier of _has', () => {
    expect(parseQuery('_has:Observation:patient:_has:AuditEvent:entity:agent=u1')).toEqual([{ name: '_has', modifier: 'Observation:patient:_has:AuditEvent:entity:agent', value: 'u1' }]);
  });

  it('decodes percent-escapes and + as UTF-8 text', () => {
    expect(parseQuery('name=Jos%C3%A9+Mar%C3%ADa&family=%E7%8E%8B&emoji=%F0%9F%98%80')).toEqual([
      { name: 'name', value: 'José María' },
      { name: 'family', value: '王' },
      { name: 'emoji', value: '😀' },
    ]);
  });

  it('decodes names too, and keeps = in values', () => {
    expect(parseQuery('%5Fid=a&code=x%3Dy&q=a=b')).toEqual([
      { name: '_id', value: 'a' },
      { name: 'code', value: 'x=y' },
      { name: 'q', value: 'a=b' },
    ]);
  });

  it('reads a piece without = as an empty value and skips empty pieces', () => {
    expect(parseQuery('&_summary&&name=&')).toEqual([
      { name: '_summary', value: '' },
      { name: 'name', value: '' },
    ]);
  });

  it('keeps reserved characters FHIR values use', () => {
    expect(parseQuery('identifier=http://acme.org/mrn|123&value-quantity=le5.4|http://unitsofmeasure.org|mg&_include=*')).toEqual([
      { name: 'identifier', value: 'http://acme.org/mrn|123' },
      { name: 'value-quantity', value: 'le5.4|http://unitsofmeasure.org|mg' },
      { name: '_include', value: '*' },
    ]);
  });

  it(`accepts ${MAX_PARAMS} parameters`, () => {
    expect(parseQuery(Array.from({ length: MAX_PARAMS }, (_, i) => `p${i}=${i}`).join('&'))).toHaveLength(MAX_PARAMS);
  });
});

describe('parseQuery refuses malformed queries with 400 bad-query', () => {
  const bad: [string, string, RegExp][] = [
    ['bad escape', 'name=%zz', /two hex digits/],
    ['truncated escape', 'name=abc%4', /two hex digits/],
    ['lone %', 'name=%', /two hex digits/],
    ['bad escape in a name', 'na%G1me=x', /two hex digits/],
    ['lone continuation byte', 'name=%80', /not valid UTF-8/],
    ['truncated sequence', 'name=%C3', /not valid UTF-8/],
    ['latin-1 byte', 'name=Jos%E9', /not valid UTF-8/],
    ['overlong encoding', 'name=%C0%AF', /not valid UTF-8/],
    ['UTF-16 surrogate', 'name=%ED%A0%80', /not valid UTF-8/],
    ['beyond U+10FFFF', 'name=%F4%90%80%80', /not valid UTF-8/],
    ['NUL', 'name=a%00b', /NUL/],
    ['encoded newline', 'name=a%0Ab', /control character/],
    ['encoded DEL', 'name=a%7Fb', /control character/],
    ['raw space', 'name=a b', /percent-encoded/],
    ['raw non-ASCII', 'name=é', /percent-encoded/],
    ['raw tab', 'name=a\tb', /percent-encoded/],
    ['empty name', '=x', /empty name/],
    ['empty name after others', 'a=1&=x', /empty name/],
    ['empty name before a modifier', ':exact=x', /empty name/],
    ['empty name before a chain', '.name=x', /empty name/],
    ['empty modifier', 'name:=x', /empty modifier/],
    ['empty chain', 'subject.=x', /empty chain/],
    ['empty chain link', 'subject.organization..name=x', /empty chain/],
    ['empty chain after a modifier', 'subject:Patient.=x', /empty chain/],
  ];

  it.each(bad)('%s: %s', (_what, raw, message) => {
    const e = refusal(raw);
    expect(e).toBeInstanceOf(FhirError);
    expect(e.status).toBe(400);
    expect(e.reason).toBe('bad-query');
    expect(e.issues[0].diagnostics).toMatch(message);
  });

  it(`refuses more than ${MAX_PARAMS} parameters`, () => {
    const e = refusal(Array.from({ length: MAX_PARAMS + 1 }, (_, i) => `p${i}=${i}`).join('&'));
    expect(e.status).toBe(400);
    expect(e.issues[0].diagnostics).toMatch(/more than/);
  });

  it('bounds what a diagnostic repeats of the input', () => {
    const e = refusal(`${'n'.repeat(5000)}%zz=1`);
    expect(e.issues[0].diagnostics.length).toBeLessThan(200);
  });
});
