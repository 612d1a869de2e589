// Search parameters against the R4 SearchParameter definitions: the name exists for the
// type (or is a common one), the modifier fits the parameter's type, every comma-separated
// value parses for the type (prefixes, token system|code, references, quantities, composite
// parts), chains resolve against the target types, and the result parameters (_include,
// _sort, _summary...) name what exists. Unknown parameters (also inside `_include`,
// `_revinclude`, a chain or `_has`) are errors, or with `Prefer: handling=lenient` warnings
// whose parameters are dropped, as FHIR R4 says. Every table here is looked up with names
// from the request, so each is a Map or Set: `constructor` or `__proto__` is just a name
// that is not there.

import type { Issue, IssueCode } from '../outcome';
import type { SearchParam } from '../interaction';
import { inCompartment, isCompartmentOwner } from '../compartments';
import { isResourceType, searchParam, type SearchParamDef, type SearchParamType } from '../search-parameters';

export interface SearchCheck {
  errors: Issue[];
  warnings: Issue[];
  /** Parameters to drop (lenient handling), as they appear in the query: `name[:modifier][.chain]`. */
  dropped: string[];
}

const PREFIXES = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)/;
const NUMBER_RE = /^[+-]?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?$/;
const DATE_RE = /^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d(:([0-5]\d|60)(\.\d+)?)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))?)?)?)?$/;
const ID_RE = /^[A-Za-z0-9\-.]{1,64}$/;
const REF_RE = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;
const URI_RE = /^\S+$/;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.\-[\]]*$/;

/** Modifiers R4 defines per parameter type (`missing` fits all; a resource type fits references). */
const MODIFIERS: ReadonlyMap<SearchParamType, ReadonlySet<string>> = new Map<SearchParamType, ReadonlySet<string>>([
  ['string', new Set(['missing', 'exact', 'contains'])],
  ['token', new Set(['missing', 'text', 'not', 'above', 'below', 'in', 'not-in', 'of-type'])],
  ['reference', new Set(['missing', 'identifier', 'above', 'below'])],
  ['uri', new Set(['missing', 'above', 'below'])],
  ['date', new Set(['missing'])],
  ['number', new Set(['missing'])],
  ['quantity', new Set(['missing'])],
  ['composite', new Set(['missing'])],
  ['special', new Set(['missing'])],
]);

/** Parameters fhirguard accepts though no SearchParameter defines them (FHIR R4 §3.1.1.5). */
const EXTRA_COMMON: ReadonlyMap<string, SearchParamDef> = new Map([
  ['_list', { code: '_list', type: 'special', targets: [] }],
  ['_offset', { code: '_offset', type: 'number', targets: [] }],
  ['_getpages', { code: '_getpages', type: 'special', targets: [] }],
  ['_getpagesoffset', { code: '_getpagesoffset', type: 'number', targets: [] }],
  ['_bundletype', { code: '_bundletype', type: 'token', targets: [] }],
]);

/**
 * The page parameters of a server that keeps a search's results itself and pages through them
 * at the base (HAPI FHIR: `[base]?_getpages=<id>&_getpagesoffset=20&_count=20`): its `next`
 * links carry them, and a client following them must get through. They are taken at the
 * system level only, where a search without `_type` reaches every type for the policy (the
 * page's id says nothing fhirguard can check about what the stored search reached).
 */
const SERVER_PAGE_PARAMS: ReadonlySet<string> = new Set(['_getpages', '_getpagesoffset', '_bundletype']);

/** Parameters that shape the result rather than filter it (checked by checkResultParam). */
// `_offset` is not an R4 parameter, but it is how the reference worker (like Medplum and
// others) pages: its `next` links carry it, and a client following them must get through.
const RESULT_PARAMS = new Set([
  '_count',
  '_offset',
  '_sort',
  '_include',
  '_revinclude',
  '_summary',
  '_elements',
  '_total',
  '_contained',
  '_containedType',
  '_format',
  '_pretty',
  '_list',
  ...SERVER_PAGE_PARAMS,
]);

const RESULT_VALUES: ReadonlyMap<string, RegExp> = new Map([
  ['_summary', /^(true|false|text|data|count)$/],
  ['_total', /^(none|estimate|accurate)$/],
  ['_contained', /^(true|false|both)$/],
  ['_containedType', /^(container|contained)$/],
  ['_pretty', /^(true|false)$/],
  ['_count', /^\d+$/],
  ['_offset', /^\d+$/],
  ['_getpages', /^[A-Za-z0-9-]{1,64}$/],
  ['_getpagesoffset', /^\d+$/],
  ['_bundletype', /^(searchset|history)$/],
]);

function definition(type: string, code: string): SearchParamDef | undefined {
  return searchParam(type, code) ?? EXTRA_COMMON.get(code);
}

/** The parameter as it appeared in the query. */
export function fullName(p: SearchParam): string {
  return p.name + (p.modifier !== undefined ? `:${p.modifier}` : '') + (p.chain !== undefined ? `.${p.chain}` : '');
}

/** Splits on commas that are not escaped (`\,`). */
function alternatives(value: string): string[] {
  return value.split(/(?<!\\),/);
}

export interface SearchCheckOptions {
  /** `Prefer: handling=lenient`: unknown parameters become warnings and are dropped. */
  lenient?: boolean;
  /** Parameters from this index on are checked strictly even when lenient (they cannot be dropped). */
  strictFrom?: number;
  /** The owner type of a compartment search: `_type` may name only its member types. */
  compartment?: string;
}

class Checker {
  readonly result: SearchCheck = { errors: [], warnings: [], dropped: [] };
  /** Whether the parameter being checked may be dropped. */
  lenient = false;

  error(code: IssueCode, diagnostics: string, param: string): void {
    this.result.errors.push({ severity: 'error', code, diagnostics, expression: [param] });
  }

  unknown(diagnostics: string, param: string): void {
    if (this.lenient) {
      this.result.warnings.push({ severity: 'warning', code: 'not-supported', diagnostics: `${diagnostics}: ignored`, expression: [param] });
      this.result.dropped.push(param);
    } else {
      this.error('not-supported', diagnostics, param);
    }
  }
}

/**
 * Checks the search parameters of a search on `resourceType` ('' for a system-level search).
 * Errors are to be refused with 400; warnings are informational; `dropped` lists what
 * lenient handling removes.
 */
export function checkSearchParams(resourceType: string, params: readonly SearchParam[], opts: SearchCheckOptions = {}): SearchCheck {
  const c = new Checker();
  // A system search narrowed by _type accepts the parameters of those types.
  const typeParam = params.find((p) => p.name === '_type' && p.modifier === undefined);
  const types = resourceType ? [resourceType] : typeParam ? alternatives(typeParam.value).filter(isResourceType) : [''];
  const strictFrom = opts.strictFrom ?? params.length;
  const compartment = opts.compartment !== undefined && isCompartmentOwner(opts.compartment) ? opts.compartment : undefined;
  for (let k = 0; k < params.length; k++) {
    c.lenient = !!opts.lenient && k < strictFrom;
    checkParam(c, types.length ? types : [''], params[k], compartment);
  }
  return c.result;
}

function checkParam(c: Checker, types: string[], p: SearchParam, compartment: string | undefined): void {
  const name = fullName(p);
  const defs = types.map((t) => definition(t, p.name)).filter((d): d is SearchParamDef => !!d);
  if (!defs.length) {
    const where = types[0] ? `for ${types.join(', ')}` : 'for a search of all types';
    c.unknown(`unknown search parameter '${p.name}' ${where}`, name);
    return;
  }
  const def = defs[0];
  if (p.name === '_has') return checkHas(c, types, p, name);
  if (RESULT_PARAMS.has(p.name)) return checkResultParam(c, types, p, name);
  if (p.name === '_type' && p.modifier === undefined) {
    for (const t of alternatives(p.value)) {
      if (!isResourceType(t)) c.error('invalid', `_type: unknown resource type '${t}'`, name);
      else if (compartment !== undefined && !inCompartment(compartment, t)) c.error('invalid', `_type: ${t} is not in the ${compartment} compartment`, name);
    }
    return;
  }
  if (p.chain !== undefined) return checkChain(c, def, p, name);
  const modifier = p.modifier;
  if (modifier !== undefined && !checkModifier(c, def, modifier, name)) return;
  if (modifier === 'missing') {
    if (p.value !== 'true' && p.value !== 'false') c.error('invalid', `':missing' takes true or false, not '${p.value}'`, name);
    return;
  }
  checkValues(c, types[0], def, modifier, p.value, name);
}

function checkModifier(c: Checker, def: SearchParamDef, modifier: string, name: string): boolean {
  if (MODIFIERS.get(def.type)?.has(modifier)) return true;
  if (def.type === 'reference' && isResourceType(modifier)) {
    if (def.targets.length && !def.targets.includes(modifier)) {
      c.error('invalid', `'${def.code}' cannot refer to ${modifier} (targets: ${def.targets.join(', ')})`, name);
      return false;
    }
    return true;
  }
  c.error('not-supported', `modifier ':${modifier}' does not apply to ${def.type} parameter '${def.code}'`, name);
  return false;
}

function checkValues(c: Checker, type: string, def: SearchParamDef, modifier: string | undefined, value: string, name: string): void {
  if (value === '') {
    c.error('invalid', `parameter '${name}' has no value`, name);
    return;
  }
  for (const v of alternatives(value)) {
    const problem = valueProblem(type, def, modifier, v);
    if (problem) c.error('invalid', `'${v}' is not a valid value for ${def.type} parameter '${name}': ${problem}`, name);
  }
}

/** Why one value does not parse for the parameter, or undefined. */
function valueProblem(type: string, def: SearchParamDef, modifier: string | undefined, v: string): string | undefined {
  if (v === '') return 'empty value';
  switch (def.type) {
    case 'number': {
      const n = v.replace(PREFIXES, '');
      return NUMBER_RE.test(n) ? undefined : 'expected an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a number';
    }
    case 'date': {
      const d = v.replace(PREFIXES, '');
      return DATE_RE.test(d) ? undefined : 'expected an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap) and a date or dateTime';
    }
    case 'quantity': {
      const [num, system, code, ...rest] = v.replace(PREFIXES, '').split('|');
      if (!NUMBER_RE.test(num)) return 'expected [prefix]number[|system|code]';
      if (rest.length || (system !== undefined && code === undefined)) return 'expected [prefix]number[|system|code]';
      return undefined;
    }
    case 'token': {
      if (modifier === 'text') return undefined;
      if (modifier === 'in' || modifier === 'not-in' || modifier === 'above' || modifier === 'below') {
        if (modifier === 'in' || modifier === 'not-in') return URI_RE.test(v) ? undefined : 'expected a value set URL';
      }
      const parts = v.split(/(?<!\\)\|/);
      if (modifier === 'of-type') return parts.length === 3 && parts[1] && parts[2] ? undefined : 'expected system|code|value';
      if (parts.length > 2) return "expected code, system|code, |code or system| (one '|' at most)";
      if (parts.length === 2 && parts[0] === '' && parts[1] === '') return "a lone '|' names no system and no code";
      return undefined;
    }
    case 'reference': {
      if (modifier === 'identifier') return valueProblem(type, { ...def, type: 'token' }, undefined, v);
      if (modifier === 'above' || modifier === 'below' || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(v)) {
        return URI_RE.test(v) ? undefined : 'expected a URL without spaces';
      }
      const m = REF_RE.exec(v);
      if (m) {
        if (!isResourceType(m[1])) return `unknown resource type '${m[1]}'`;
        if (def.targets.length && !def.targets.includes(m[1])) return `'${def.code}' cannot refer to ${m[1]}`;
        if (modifier && isResourceType(modifier) && modifier !== m[1]) return `the value names ${m[1]} but the modifier ${modifier}`;
        return undefined;
      }
      return ID_RE.test(v) ? undefined : 'expected an id, Type/id or an absolute URL';
    }
    case 'uri':
      return URI_RE.test(v) ? undefined : 'expected a URI without spaces';
    case 'composite': {
      const parts = v.split(/(?<!\\)\$/);
      const comps = def.components ?? [];
      if (comps.length && parts.length !== comps.length) return `expected ${comps.length} parts joined by '$' (${comps.join('$')})`;
      for (let i = 0; i < comps.length; i++) {
        const cdef = searchParam(type, comps[i]);
        if (!cdef || cdef.type === 'composite') continue;
        const problem = valueProblem(type, cdef, undefined, parts[i]);
        if (problem) return `part ${i + 1} (${comps[i]}): ${problem}`;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** `subject:Patient.name=x`, `general-practitioner.organization.name=x`: every link resolves. */
function checkChain(c: Checker, def: SearchParamDef, p: SearchParam, name: string): void {
  if (def.type !== 'reference') {
    c.error('invalid', `'${def.code}' is a ${def.type} parameter: only reference parameters can be chained`, name);
    return;
  }
  let targets: string[];
  if (p.modifier !== undefined) {
    if (!checkModifier(c, def, p.modifier, name)) return;
    if (!isResourceType(p.modifier)) {
      c.error('invalid', `a chained parameter's modifier must be a resource type, not ':${p.modifier}'`, name);
      return;
    }
    targets = [p.modifier];
  } else {
    targets = def.targets.length ? [...def.targets] : [];
  }
  const links = (p.chain ?? '').split('.');
  for (let i = 0; i < links.length; i++) {
    const [code, modifier] = links[i].split(':');
    const last = i === links.length - 1;
    const candidates = targets.length ? targets : [''];
    const found = candidates.map((t) => ({ t, d: definition(t, code) })).filter((x): x is { t: string; d: SearchParamDef } => !!x.d);
    if (!found.length) {
      c.unknown(`chained parameter '${code}' is not defined for ${targets.length ? targets.join(', ') : 'any target type'}`, name);
      return;
    }
    const { t, d } = found[0];
    if (!last) {
      if (d.type !== 'reference') {
        c.error('invalid', `'${code}' is a ${d.type} parameter of ${t}: it cannot be chained further`, name);
        return;
      }
      if (modifier !== undefined && !isResourceType(modifier)) {
        c.error('invalid', `a chained parameter's modifier must be a resource type, not ':${modifier}'`, name);
        return;
      }
      const next = new Set<string>();
      for (const f of found) {
        if (f.d.type !== 'reference') continue;
        for (const target of modifier ? [modifier] : f.d.targets) next.add(target);
      }
      targets = [...next];
      continue;
    }
    if (modifier !== undefined && !checkModifier(c, d, modifier, name)) return;
    if (modifier === 'missing') {
      if (p.value !== 'true' && p.value !== 'false') c.error('invalid', `':missing' takes true or false, not '${p.value}'`, name);
      return;
    }
    checkValues(c, t, d, modifier, p.value, name);
  }
}

/** `_has:Observation:patient:code=x`: a reverse chain; may nest another `_has`. */
function checkHas(c: Checker, types: string[], p: SearchParam, name: string): void {
  const parts = (p.modifier ?? '').split(':');
  if (parts.length < 3) {
    c.error('invalid', "'_has' needs the form _has:Type:reference:parameter", name);
    return;
  }
  const [type, ref, ...rest] = parts;
  if (!isResourceType(type)) {
    c.error('invalid', `'_has': unknown resource type '${type}'`, name);
    return;
  }
  const refDef = definition(type, ref);
  if (!refDef) {
    c.unknown(`'_has': unknown search parameter '${ref}' for ${type}`, name);
    return;
  }
  if (refDef.type !== 'reference') {
    c.error('invalid', `'_has': '${ref}' is not a reference parameter of ${type}`, name);
    return;
  }
  const searched = types.filter(Boolean);
  if (searched.length && refDef.targets.length && !searched.some((t) => refDef.targets.includes(t))) {
    c.error('invalid', `'_has': ${type}.${ref} cannot refer to ${searched.join(', ')}`, name);
    return;
  }
  if (rest[0] === '_has') {
    checkHas(c, [type], { name: '_has', modifier: rest.slice(1).join(':'), value: p.value }, name);
    return;
  }
  const [code, modifier] = rest;
  const d = definition(type, code);
  if (!d) {
    c.unknown(`'_has': unknown search parameter '${code}' for ${type}`, name);
    return;
  }
  if (modifier !== undefined && !checkModifier(c, d, modifier, name)) return;
  checkValues(c, type, d, modifier, p.value, name);
}

/** _include, _revinclude, _sort, _summary, _elements...: values that name what exists. */
function checkResultParam(c: Checker, types: string[], p: SearchParam, name: string): void {
  const type = types[0];
  if (p.name === '_include' || p.name === '_revinclude') {
    if (p.modifier !== undefined && p.modifier !== 'iterate' && p.modifier !== 'recurse') {
      c.error('not-supported', `modifier ':${p.modifier}' does not apply to ${p.name} (only :iterate)`, name);
      return;
    }
    for (const v of alternatives(p.value)) {
      if (v === '*') continue;
      const [source, ref, target, ...more] = v.split(':');
      if (more.length || ref === undefined || !isResourceType(source)) {
        c.error('invalid', `${p.name} value '${v}' must be SourceType:parameter[:TargetType]`, name);
        continue;
      }
      const d = definition(source, ref);
      if (!d) {
        c.unknown(`${p.name}: unknown search parameter '${ref}' for ${source}`, name);
      } else if (d.type !== 'reference') {
        c.error('invalid', `${p.name}: '${ref}' is not a reference parameter of ${source}`, name);
      } else if (target !== undefined && (!isResourceType(target) || (d.targets.length && !d.targets.includes(target)))) {
        c.error('invalid', `${p.name}: ${source}.${ref} cannot refer to ${target}`, name);
      } else if (p.name === '_include' && type && !p.modifier && source !== type && !types.includes(source)) {
        c.error('invalid', `_include '${v}' starts from ${source}, but the search returns ${types.join(', ')}`, name);
      }
    }
    return;
  }
  if (p.modifier !== undefined) {
    c.error('not-supported', `modifier ':${p.modifier}' does not apply to ${p.name}`, name);
    return;
  }
  if (SERVER_PAGE_PARAMS.has(p.name) && type) {
    c.error('invalid', `${p.name} pages a search the server keeps: it goes to the base ([base]?${p.name}=...), not to a type`, name);
    return;
  }
  const pattern = RESULT_VALUES.get(p.name);
  if (pattern && !pattern.test(p.value)) {
    c.error('invalid', `'${p.value}' is not a valid value for ${p.name}`, name);
    return;
  }
  if (p.name === '_sort') {
    for (const key of alternatives(p.value)) {
      const code = key.startsWith('-') ? key.slice(1) : key;
      if (!types.some((t) => definition(t, code))) c.error('invalid', `_sort: unknown search parameter '${code}'`, name);
    }
  } else if (p.name === '_elements') {
    for (const e of alternatives(p.value)) if (!NAME_RE.test(e)) c.error('invalid', `_elements: '${e}' is not an element name`, name);
  }
}

const INSTANT_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$/;

/** History interactions take only `_count`, `_offset` (paging links), `_since` (an instant), `_at` (a date) and the format parameters. */
export function checkHistoryParams(params: readonly SearchParam[], lenient = false): SearchCheck {
  const c = new Checker();
  c.lenient = lenient;
  for (const p of params) {
    const name = fullName(p);
    if (p.modifier !== undefined || p.chain !== undefined) {
      c.error('not-supported', `history parameters take no modifier or chain ('${name}')`, name);
    } else if (p.name === '_count' || p.name === '_offset') {
      if (!/^\d+$/.test(p.value)) c.error('invalid', `'${p.value}' is not a valid value for ${p.name}`, name);
    } else if (p.name === '_since') {
      if (!INSTANT_RE.test(p.value)) c.error('invalid', `_since takes an instant (e.g. 2020-01-01T00:00:00Z), not '${p.value}'`, name);
    } else if (p.name === '_at') {
      for (const v of alternatives(p.value)) {
        if (!DATE_RE.test(v.replace(PREFIXES, ''))) c.error('invalid', `'${v}' is not a valid value for _at`, name);
      }
    } else if (!['_format', '_pretty', '_summary', '_elements', '_list'].includes(p.name)) {
      c.unknown(`'${p.name}' is not a parameter of history interactions`, name);
    }
  }
  return c.result;
}
