// Request paths under the /fhir base: every REST level (type, instance, version, history,
// compartments, operations, _search, metadata, system), plus the shapes a server may read
// differently from fhirguard (dot segments, encoded slashes and dots, matrix parameters,
// double slashes, percent-encoded letters).

import fc from 'fast-check';
import { IDS, ODD_TYPES, OPERATIONS, TYPES } from './names';
import { sometimes } from './sometimes';

const type = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...TYPES) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_TYPES) });
const id = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...IDS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(encodeURIComponent) });
const op = fc.constantFrom(...OPERATIONS);

const shapes: fc.Arbitrary<string[]> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(type).map(([t]) => [t]) },
  { weight: 6, arbitrary: fc.tuple(type, id).map(([t, i]) => [t, i]) },
  { weight: 2, arbitrary: fc.tuple(type, id, fc.constantFrom('1', '2', 'x', '')).map(([t, i, v]) => [t, i, '_history', v]) },
  { weight: 2, arbitrary: fc.tuple(type, fc.option(id)).map(([t, i]) => (i === null ? [t, '_history'] : [t, i, '_history'])) },
  { weight: 1, arbitrary: fc.constant<string[]>(['_history']) },
  { weight: 3, arbitrary: fc.tuple(type, id, fc.oneof(type, fc.constant('*'))).map(([t, i, m]) => [t, i, m]) },
  { weight: 2, arbitrary: fc.tuple(fc.option(type), fc.option(id), op).map(([t, i, o]) => [...(t ? [t] : []), ...(t && i ? [i] : []), o]) },
  { weight: 2, arbitrary: fc.tuple(fc.option(type)).map(([t]) => (t ? [t, '_search'] : ['_search'])) },
  { weight: 1, arbitrary: fc.constantFrom<string[][]>(['metadata'], [], ['']) },
);

/** Rewrites that keep a path's meaning for a lenient server while changing its bytes. */
const traversal: fc.Arbitrary<(segs: string[]) => string> = fc.constantFrom(
  (s: string[]) => `Patient/../${s.join('/')}`,
  (s: string[]) => `Patient/%2e%2e/${s.join('/')}`,
  (s: string[]) => `Patient/%2E%2E%2F${s.join('/')}`,
  (s: string[]) => `./${s.join('/')}`,
  (s: string[]) => s.join('%2F'),
  (s: string[]) => s.join('//'),
  (s: string[]) => s.map((x, i) => (i === 0 ? `${x};v=1` : x)).join('/'),
  (s: string[]) => s.map((x) => x.replace(/[A-Za-z]/, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/'),
  (s: string[]) => s.map((x) => x.replace(/[A-Za-z]/, (c) => `%25${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/'),
  (s: string[]) => `${s.join('/')}/`,
  (s: string[]) => `${s.join('/')}/.`,
  (s: string[]) => `${s.join('/')}%00`,
  (s: string[]) => s.join('\\'),
);

const base = fc.oneof({ weight: 30, arbitrary: fc.constant('/fhir/') }, { weight: 1, arbitrary: fc.constantFrom('/fhir', '//fhir/', '/FHIR/', '/fhir/../fhir/', '/fhir%2F', '/', '/fhir/./', '*') });

export const pathArb: fc.Arbitrary<string> = fc.tuple(base, shapes, sometimes(traversal, 6)).map(([b, segs, t]) => (b === '*' ? '*' : b + (t ? t(segs) : segs.join('/'))));
