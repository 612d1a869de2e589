// Content negotiation: Accept and _format (406), request Content-Type (415).

import { checkRequestContentType, negotiateResponse } from '../../src/fhir/content';
import type { Interaction } from '../../src/fhir/interaction';
import { FhirError } from '../../src/fhir/outcome';

function thrown(f: () => void): FhirError | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  return undefined;
}

function I(kind: Interaction['kind'], fields: Partial<Interaction> = {}): Interaction {
  return { kind, level: 'type', conditional: false, params: [], resourceType: 'Patient', ...fields };
}

describe('negotiateResponse', () => {
  const acceptable: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['*/*', undefined],
    ['application/fhir+json', undefined],
    ['application/json', undefined],
    ['application/json+fhir', undefined],
    ['application/*', undefined],
    ['APPLICATION/FHIR+JSON', undefined],
    ['application/fhir+json; charset=UTF-8', undefined],
    ['application/fhir+json; fhirVersion=4.0', undefined],
    ['application/fhir+xml;q=1.0, application/fhir+json;q=0.9', undefined],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', undefined],
    ['application/fhir+json;q=0, application/json', undefined],
    [undefined, 'json'],
    [undefined, 'JSON'],
    [undefined, 'application/json'],
    [undefined, 'application/fhir+json'],
    [undefined, 'application/fhir json'],
    [undefined, 'application/fhir+json;fhirVersion=4.0'],
    ['application/fhir+xml', 'json'],
    ['text/turtle', 'application/fhir+json'],
    ['application/fhir+json', ''],
  ];
  it.each(acceptable)('accepts Accept %p with _format %p', (accept, format) => {
    expect(thrown(() => negotiateResponse(accept, format))).toBeUndefined();
  });

  const refused: [string | undefined, string | undefined][] = [
    ['application/fhir+xml', undefined],
    ['application/xml', undefined],
    ['text/xml', undefined],
    ['text/turtle', undefined],
    ['text/html', undefined],
    ['text/*', undefined],
    ['application/fhir+json; fhirVersion=3.0', undefined],
    ['application/fhir+json; charset=iso-8859-1', undefined],
    ['application/fhir+json;q=0, application/json;q=0', undefined],
    ['application/fhir+json;q=0, application/json;q=0, application/json+fhir;q=0, */*', undefined],
    ['garbage', undefined],
    [`application/fhir+json, ${'x/y, '.repeat(300)}`, undefined],
    [undefined, 'xml'],
    [undefined, 'text/xml'],
    [undefined, 'application/fhir+xml'],
    [undefined, 'ttl'],
    [undefined, 'text/turtle'],
    [undefined, 'html'],
    [undefined, 'application/fhir+json;fhirVersion=1.0'],
    ['application/fhir+json', 'xml'],
    ['*/*', 'application/fhir+xml'],
    ['application/fhir+xml', ''],
  ];
  it.each(refused)('refuses Accept %p with _format %p: 406', (accept, format) => {
    const e = thrown(() => negotiateResponse(accept, format));
    expect(e).toBeDefined();
    expect(e!.status).toBe(406);
    expect(e!.reason).toBe('not-acceptable');
    expect(e!.issues[0].diagnostics).toMatch(/JSON only/);
  });

  // Verdicts are remembered per Accept value (bounded): asking again, and asking after more
  // distinct values than the memory holds, gives the same answers as the first time.
  it('gives the same verdict for an Accept value every time, past the bound on remembered values', () => {
    const verdict = (accept: string) => thrown(() => negotiateResponse(accept, undefined))?.status ?? 200;
    const ok = 'application/fhir+json';
    const bad = 'application/fhir+xml';
    for (let round = 0; round < 3; round++) {
      expect(verdict(ok)).toBe(200);
      expect(verdict(bad)).toBe(406);
      for (let i = 0; i < 700; i++) {
        expect(verdict(`application/x-${round}-${i}`)).toBe(406);
        expect(verdict(`application/x-${round}-${i}, application/json`)).toBe(200);
      }
    }
  });
});

describe('checkRequestContentType', () => {
  const ok: [string, string | undefined, Interaction][] = [
    ['POST', 'application/fhir+json', I('create')],
    ['POST', 'application/json', I('create')],
    ['POST', 'application/fhir+json; charset=utf-8', I('create')],
    ['POST', 'application/fhir+json;charset="UTF-8"', I('create')],
    ['POST', 'application/fhir+json; fhirVersion=4.0', I('create')],
    ['POST', 'application/json+fhir', I('create', { conditional: true })],
    ['PUT', 'application/fhir+json', I('update', { id: '1', level: 'instance' })],
    ['put', 'application/json', I('update', { conditional: true })],
    ['PATCH', 'application/json-patch+json', I('patch', { id: '1' })],
    ['PATCH', 'application/fhir+json', I('patch', { id: '1' })],
    ['POST', 'application/fhir+json', I('transaction', { level: 'system', resourceType: undefined })],
    ['POST', 'application/json', I('batch', { level: 'system', resourceType: undefined })],
    ['POST', 'application/x-www-form-urlencoded', I('search-type')],
    ['POST', 'application/x-www-form-urlencoded; charset=UTF-8', I('search-system', { level: 'system' })],
    ['POST', undefined, I('search-type')],
    ['POST', 'application/fhir+json', I('operation', { operation: '$validate' })],
    ['POST', undefined, I('operation', { operation: '$everything' })],
    ['GET', undefined, I('read', { id: '1' })],
    ['GET', 'text/plain', I('search-type')],
    ['HEAD', 'application/xml', I('read', { id: '1' })],
    ['DELETE', 'application/xml', I('delete', { id: '1' })],
    ['DELETE', undefined, I('delete', { conditional: true })],
    ['GET', undefined, I('operation', { operation: '$everything' })],
  ];
  it.each(ok)('accepts %s with %p for %p', (method, type, interaction) => {
    expect(thrown(() => checkRequestContentType(method, type, interaction))).toBeUndefined();
  });

  const refused: [string, string | undefined, Interaction, RegExp][] = [
    ['POST', undefined, I('create'), /needs a Content-Type/],
    ['POST', '', I('create'), /needs a Content-Type/],
    ['PUT', undefined, I('update', { id: '1' }), /needs a Content-Type/],
    ['PATCH', undefined, I('patch', { id: '1' }), /needs a Content-Type/],
    ['POST', undefined, I('transaction', { level: 'system' }), /needs a Content-Type/],
    ['POST', 'application/fhir+xml', I('create'), /not accepted/],
    ['POST', 'application/xml', I('create'), /not accepted/],
    ['POST', 'text/plain', I('create'), /not accepted/],
    ['POST', 'application/x-www-form-urlencoded', I('create'), /not accepted/],
    ['POST', 'application/fhir+json; charset=iso-8859-1', I('create'), /charset/],
    ['POST', 'application/json; charset=utf-16', I('batch', { level: 'system' }), /charset/],
    ['POST', 'application/fhir+json; fhirVersion=3.0', I('create'), /fhirVersion/],
    ['POST', 'application/fhir+json; charset', I('create'), /not a valid media type/],
    ['POST', 'json', I('create'), /not a valid media type/],
    ['POST', `application/fhir+json; x="${'a'.repeat(2000)}"`, I('create'), /longer than/],
    ['PATCH', 'application/json', I('patch', { id: '1' }), /not accepted/],
    ['PATCH', 'application/xml-patch+xml', I('patch', { id: '1' }), /not accepted/],
    ['POST', 'application/fhir+json', I('search-type'), /not accepted/],
    ['POST', 'multipart/form-data; boundary=x', I('search-type'), /not accepted/],
    ['POST', 'application/x-www-form-urlencoded; charset=latin1', I('search-type'), /charset/],
    ['POST', 'application/xml', I('operation', { operation: '$validate' }), /not accepted/],
  ];
  it.each(refused)('refuses %s with %p for %p: 415', (method, type, interaction, message) => {
    const e = thrown(() => checkRequestContentType(method, type, interaction));
    expect(e).toBeDefined();
    expect(e!.status).toBe(415);
    expect(e!.reason).toBe('unsupported-media-type');
    expect(e!.issues[0].diagnostics).toMatch(message);
  });
});
