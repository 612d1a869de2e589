// Query strings: search parameters with modifiers, prefixes and chains, the reach-widening
// ones (_include, _revinclude with :iterate, _has, _type, _list, _filter, _query), names
// inherited from Object.prototype in every position, _method, repeated and empty parameters,
// odd encodings.

import fc from 'fast-check';
import { MODIFIERS, OBJECT_PROTOTYPE_NAMES, PREFIXES, SEARCH_PARAMS, TYPES } from './names';
import { sometimes } from './sometimes';

const protoName = fc.constantFrom(...OBJECT_PROTOTYPE_NAMES);

const plainName = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...SEARCH_PARAMS) }, { weight: 1, arbitrary: protoName });

const value = fc.oneof(
  fc.tuple(fc.constantFrom(...PREFIXES), fc.constantFrom('2020', '2020-01-01', '2020-13-45', '5', '1e400', '123456789012345678901234567890', '-0', 'NaN')).map(([p, v]) => p + v),
  fc.constantFrom('x', '', 'Practitioner', 'Practitioner/1', 'Patient/1', 'http://loinc.org|1234-5', '|x', 'a,b', 'a\\,b', '*', 'true', 'false', '%00', '%ZZ', '%C3%28', '\u00e9'),
  protoName,
  fc.string({ maxLength: 8 }),
);

/** name[:modifier][.chain] = value */
const plain = fc
  .tuple(plainName, sometimes(fc.oneof(fc.constantFrom(...MODIFIERS), protoName), 3), sometimes(fc.tuple(plainName, fc.option(fc.constantFrom(...TYPES))), 5), value)
  .map(([n, m, chain, v]) => {
    let name = m === null ? n : `${n}:${m}`;
    if (chain) name = chain[1] ? `${name}:${chain[1]}.${chain[0]}` : `${name}.${chain[0]}`;
    return [name, v] as [string, string];
  });

const includeValue = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...TYPES),
      fc.constantFrom('subject', 'patient', 'practitioner', 'participant', 'general-practitioner', 'performer', '*', 'constructor'),
      fc.option(fc.constantFrom(...TYPES)),
    )
    .map(([t, p, target]) => (target ? `${t}:${p}:${target}` : `${t}:${p}`)),
  fc.constantFrom('*', 'Practitioner:*', '', ':', 'Encounter', '__proto__:x'),
);

const reach = fc.oneof(
  fc.tuple(fc.constantFrom('_include', '_revinclude', '_include:iterate', '_revinclude:iterate', '_include:recurse', '_include:constructor'), includeValue),
  fc.tuple(
    fc.constant('_type'),
    fc.array(fc.oneof(fc.constantFrom(...TYPES), protoName), { minLength: 0, maxLength: 3 }).map((a) => a.join(',')),
  ),
  fc
    .tuple(
      fc.constantFrom(...TYPES),
      fc.constantFrom('subject', 'patient', 'practitioner', 'performer', 'constructor'),
      fc.constantFrom('code', 'name', 'identifier', '_id'),
      fc.boolean(),
      fc.constantFrom(...TYPES),
    )
    .map(([t, p, n, nested, t2]) => [nested ? `_has:${t}:${p}:_has:${t2}:${p}:${n}` : `_has:${t}:${p}:${n}`, 'x'] as [string, string]),
  fc.tuple(fc.constantFrom('_list', '_filter', '_query', '_sort', '_elements', '_summary', '_contained', '_containedType'), fc.oneof(value, plainName)),
  fc.tuple(fc.constant('_method'), fc.constantFrom('DELETE', 'PATCH', 'PUT', 'GET', 'POST')),
);

const param: fc.Arbitrary<[string, string]> = fc.oneof({ weight: 3, arbitrary: plain }, { weight: 2, arbitrary: reach });

/** Encodes a name or value the way a client might (or should not). */
const encoding = fc.constantFrom(
  (s: string) => encodeURIComponent(s).replace(/%3A/g, ':').replace(/%2C/g, ','),
  (s: string) => encodeURIComponent(s),
  (s: string) => s.replace(/[^\x21-\x7e]|[#&%+ ]/g, (c) => encodeURIComponent(c)),
  (s: string) => s.replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`).replace(/[^\x21-\x7e]|[#& ]/g, (c) => encodeURIComponent(c)),
);

export const queryArb: fc.Arbitrary<string> = fc
  .tuple(fc.array(param, { minLength: 1, maxLength: 4 }), encoding, fc.constantFrom('&', '&', '&', ';', '&&'))
  .map(([ps, enc, sep]) => ps.map(([n, v]) => `${enc(n)}=${enc(v)}`).join(sep));
