// A FHIRPath compiler for the subset the R4 invariants use, producing plain closures over the
// resource's JSON and fhirguard's type tables. fhirpath.js (the reference) spends most of an
// evaluation wrapping every node; these closures read the JSON as it is. Anything outside
// the subset falls back to fhirpath.js: at compile time (an unsupported function or
// operator) or at run time (a case whose semantics need the full engine, e.g. quantities in
// different units, dates of different precision with times): the closure then throws
// FALLBACK and the caller asks fhirpath.js. test/validate/fastpath.test.ts checks that both
// agree on every invariant over the whole example corpus.

import type { TypeRegistry } from './compiled';

/** One item of a collection: a JSON value and its FHIR (or System) type. */
export interface Item {
  v: unknown;
  t: string;
  /** For a primitive: its `_name` companion (id, extensions). */
  e?: unknown;
}
type Coll = Item[];

export interface FastEnv {
  resource: unknown;
  rootResource: unknown;
}

interface Ctx {
  env: FastEnv;
  context: Item;
}

/** Thrown when a case needs fhirpath.js's full semantics. */
export const FALLBACK = { fallback: true } as const;

class Unsupported extends Error {}

type Expr = (self: Coll, c: Ctx) => Coll;
type Invocation = (focus: Coll, self: Coll, c: Ctx) => Coll;

interface Ast {
  type: string;
  text?: string;
  children?: Ast[];
}

const UCUM = 'http://unitsofmeasure.org';
const NO_VALUE = Symbol('no value');
const TRUE: Coll = [{ v: true, t: 'System.Boolean' }];
const FALSE: Coll = [{ v: false, t: 'System.Boolean' }];
const EMPTY: Coll = [];
const bool = (b: boolean): Coll => (b ? TRUE : FALSE);
const DATE_TYPES = new Set(['date', 'dateTime', 'instant', 'System.Date', 'System.DateTime']);

export class FastPathCompiler {
  constructor(private readonly reg: TypeRegistry) {}

  /** A closure for an expression (fhirpath.js's parse tree), or undefined when it is outside the subset. */
  compile(ast: unknown): ((node: unknown, type: string, env: FastEnv) => Coll) | undefined {
    let fn: Expr;
    try {
      fn = this.expr(ast as Ast);
    } catch (e) {
      if (e instanceof Unsupported) return undefined;
      throw e;
    }
    return (node, type, env) => {
      const item: Item = { v: node, t: type };
      return fn([item], { env, context: item });
    };
  }

  private expr(n: Ast): Expr {
    const ch = n.children ?? [];
    switch (n.type) {
      case 'EntireExpression':
      case 'ParenthesizedTerm':
        return this.expr(ch[0]);
      case 'TermExpression':
        return this.term(ch[0]);
      case 'InvocationExpression': {
        const presence = this.presenceTest(ch[0], ch[1]);
        if (presence) return presence;
        const left = this.expr(ch[0]);
        const inv = this.invocation(ch[1]);
        return (self, c) => inv(left(self, c), self, c);
      }
      case 'IndexerExpression': {
        const left = this.expr(ch[0]);
        const index = this.expr(ch[1]);
        return (self, c) => {
          const i = index(self, c);
          if (i.length !== 1 || typeof i[0].v !== 'number') throw FALLBACK;
          const l = left(self, c);
          const at = l[i[0].v];
          return at ? [at] : EMPTY;
        };
      }
      case 'PolarityExpression': {
        const inner = this.expr(ch[0]);
        const neg = n.text === '-';
        return (self, c) => {
          const r = inner(self, c);
          if (r.length === 0) return EMPTY;
          if (r.length !== 1 || typeof r[0].v !== 'number') throw FALLBACK;
          return neg ? [{ v: -r[0].v, t: r[0].t }] : r;
        };
      }
      case 'AndExpression':
        return this.logic(ch, n.text === 'and' ? and : invalid);
      case 'OrExpression':
        return this.logic(ch, n.text === 'or' ? or : n.text === 'xor' ? xor : invalid);
      case 'ImpliesExpression':
        return this.logic(ch, implies);
      case 'EqualityExpression':
        return this.equality(ch, n.text ?? '');
      case 'InequalityExpression':
        return this.inequality(ch, n.text ?? '');
      case 'UnionExpression': {
        const l = this.expr(ch[0]);
        const r = this.expr(ch[1]);
        return (self, c) => distinct([...l(self, c), ...r(self, c)]);
      }
      case 'MembershipExpression': {
        const l = this.expr(ch[0]);
        const r = this.expr(ch[1]);
        const isIn = n.text === 'in';
        return (self, c) => {
          const [item, coll] = isIn ? [l(self, c), r(self, c)] : [r(self, c), l(self, c)];
          if (item.length === 0) return EMPTY;
          if (item.length > 1) throw FALLBACK;
          return bool(coll.some((x) => equal(item[0], x) === true));
        };
      }
      case 'AdditiveExpression':
        return this.additive(ch, n.text ?? '');
      case 'TypeExpression': {
        const l = this.expr(ch[0]);
        const type = typeName(ch[1]);
        if (n.text === 'is') {
          return (self, c) => {
            const r = l(self, c);
            if (r.length === 0) return EMPTY;
            if (r.length > 1) throw FALLBACK;
            return bool(this.isType(r[0], type));
          };
        }
        if (n.text === 'as') return (self, c) => l(self, c).filter((x) => this.isType(x, type));
        throw new Unsupported();
      }
      default:
        throw new Unsupported();
    }
  }

  /**
   * `name.exists()` / `name.empty()` straight on the node, the most common invariant steps:
   * answered from the JSON keys without building the collection.
   */
  private presenceTest(left: Ast, call: Ast): Expr | undefined {
    const inv = left.type === 'TermExpression' ? left.children?.[0] : undefined;
    const member = inv?.type === 'InvocationTerm' ? inv.children?.[0] : undefined;
    if (member?.type !== 'MemberInvocation' || call.type !== 'FunctionInvocation') return undefined;
    const name = (member.text ?? '').replace(/`/g, '');
    const fn = call.children?.[0];
    const fname = fn?.children?.[0]?.text;
    if ((fname !== 'exists' && fname !== 'empty') || (fn?.children?.length ?? 0) > 1) return undefined;
    if (!/^[a-z]/.test(name) || name === 'extension' || name === 'id') return undefined;
    const wantPresent = fname === 'exists';
    return (self) => {
      let present = false;
      for (let i = 0; i < self.length && !present; i++) present = this.has(self[i], name);
      return bool(present === wantPresent);
    };
  }

  /** Whether `item` has a child `name` (a value or, for a primitive, only its extensions). */
  private has(item: Item, name: string): boolean {
    const v = item.v;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
    const t = this.reg.get(item.t);
    if (!t) throw FALLBACK;
    const slots = t.byName.get(name);
    if (!slots) return false;
    const obj = v as Record<string, unknown>;
    for (const slot of slots) {
      const val = obj[slot.key];
      if (val !== undefined && val !== null && !(Array.isArray(val) && val.every((x) => x === null))) return true;
      if (slot.primitive && obj['_' + slot.key] !== undefined) return true;
    }
    return false;
  }

  private term(n: Ast): Expr {
    const ch = n.children ?? [];
    switch (n.type) {
      case 'InvocationTerm': {
        const inv = this.invocation(ch[0]);
        return (self, c) => inv(self, self, c);
      }
      case 'LiteralTerm':
        return literal(ch[0]);
      case 'ParenthesizedTerm':
        return this.expr(ch[0]);
      case 'ExternalConstantTerm': {
        const name = (n.text ?? '').replace(/^[`'"]|[`'"]$/g, '');
        if (name === 'ucum') return () => [{ v: UCUM, t: 'System.String' }];
        if (name === 'context') return (_s, c) => [c.context];
        if (name === 'resource' || name === 'rootResource') {
          const key = name as 'resource' | 'rootResource';
          return (_s, c) => {
            const r = c.env[key] as Record<string, unknown> | undefined;
            return r && typeof r.resourceType === 'string' ? [{ v: r, t: r.resourceType }] : EMPTY;
          };
        }
        throw new Unsupported();
      }
      default:
        throw new Unsupported();
    }
  }

  private invocation(n: Ast): Invocation {
    switch (n.type) {
      case 'MemberInvocation':
        return this.member((n.text ?? '').replace(/`/g, ''));
      case 'ThisInvocation':
        return (_focus, self) => self;
      case 'FunctionInvocation':
        return this.fn(n.children![0]);
      default:
        throw new Unsupported();
    }
  }

  private member(name: string): Invocation {
    const upper = name.charCodeAt(0) >= 65 && name.charCodeAt(0) <= 90;
    return (focus) => {
      const out: Coll = [];
      for (const item of focus) {
        // `Patient.name` starts with a type name: it filters the context by type.
        if (upper) {
          if (this.isType(item, name)) out.push(item);
          continue;
        }
        this.children(item, name, out);
      }
      return out;
    };
  }

  /** The children of `item` named `name` (all the choice's variants for `value`). */
  private children(item: Item, name: string, out: Coll): void {
    const v = item.v;
    if (typeof v !== 'object' || v === null) {
      // A primitive's id and extensions live in its companion.
      if ((name === 'extension' || name === 'id') && item.e && typeof item.e === 'object') {
        this.children({ v: item.e, t: 'Element' }, name, out);
      }
      return;
    }
    const t = this.reg.get(item.t);
    if (!t) throw FALLBACK;
    const slots = t.byName.get(name);
    if (!slots) return;
    const obj = v as Record<string, unknown>;
    for (const slot of slots) {
      const val = obj[slot.key];
      const comp = slot.primitive ? obj['_' + slot.key] : undefined;
      if (val === undefined && comp === undefined) continue;
      const type = slot.ref.code;
      if (Array.isArray(val) || Array.isArray(comp)) {
        const vals = Array.isArray(val) ? val : [];
        const comps = Array.isArray(comp) ? comp : [];
        const n = Math.max(vals.length, comps.length);
        for (let i = 0; i < n; i++) out.push(this.item(vals[i], type, comps[i]));
      } else {
        out.push(this.item(val, type, comp));
      }
    }
  }

  /** Every child of `item`, in property order (what children() returns). */
  private allChildren(item: Item): Coll {
    const out: Coll = [];
    const v = item.v;
    if (typeof v !== 'object' || v === null) {
      if (item.e && typeof item.e === 'object') {
        this.children({ v: item.e, t: 'Element' }, 'id', out);
        this.children({ v: item.e, t: 'Element' }, 'extension', out);
      }
      return out;
    }
    const t = this.reg.get(item.t);
    if (!t) throw FALLBACK;
    const done = new Set<string>();
    for (const key of Object.keys(v)) {
      const slot = t.slots.get(key);
      if (!slot || done.has(slot.el.name)) continue;
      done.add(slot.el.name);
      this.children(item, slot.el.name, out);
    }
    return out;
  }

  private item(v: unknown, type: string, comp: unknown): Item {
    if (type === 'Resource' && v && typeof v === 'object') {
      const rt = (v as Record<string, unknown>).resourceType;
      return { v, t: typeof rt === 'string' ? rt : 'Resource' };
    }
    if (comp !== undefined && comp !== null) return { v: v ?? NO_VALUE, t: type, e: comp };
    return { v: v === null || v === undefined ? NO_VALUE : v, t: type };
  }

  isType(item: Item, type: string): boolean {
    if (type.startsWith('System.')) return item.t === type;
    const name = type.startsWith('FHIR.') ? type.slice(5) : type;
    return this.reg.isA(item.t, name);
  }

  private fn(n: Ast): Invocation {
    const ch = n.children ?? [];
    const name = ch[0].text ?? '';
    const params = ch[1] ? (ch[1].children ?? []) : [];
    const arity = params.length;
    const lambda = (i: number): Expr => this.expr(params[i]);
    const value = (i: number): Expr => this.expr(params[i]);
    switch (name) {
      case 'exists':
        if (arity === 0) return (f) => bool(f.length > 0);
        if (arity === 1) {
          const crit = lambda(0);
          return (f, _s, c) => bool(f.some((x) => isTrue(crit([x], c))));
        }
        break;
      case 'empty':
        if (arity === 0) return (f) => bool(f.length === 0);
        break;
      case 'not':
        if (arity === 0)
          return (f) => {
            const b = singletonBoolean(f);
            return b === undefined ? EMPTY : bool(!b);
          };
        break;
      case 'count':
        if (arity === 0) return (f) => [{ v: f.length, t: 'System.Integer' }];
        break;
      case 'where':
        if (arity === 1) {
          const crit = lambda(0);
          return (f, _s, c) => f.filter((x) => isTrue(crit([x], c)));
        }
        break;
      case 'select':
        if (arity === 1) {
          const proj = lambda(0);
          return (f, _s, c) => f.flatMap((x) => proj([x], c));
        }
        break;
      case 'all':
        if (arity === 1) {
          const crit = lambda(0);
          return (f, _s, c) => bool(f.every((x) => isTrue(crit([x], c))));
        }
        break;
      case 'allFalse':
        if (arity === 0) return (f) => bool(f.every((x) => x.v === false));
        break;
      case 'first':
        if (arity === 0) return (f) => (f.length ? [f[0]] : EMPTY);
        break;
      case 'tail':
        if (arity === 0) return (f) => f.slice(1);
        break;
      case 'isDistinct':
        if (arity === 0) return (f) => bool(distinct(f).length === f.length);
        break;
      case 'trace':
        return (f) => f;
      case 'children':
        if (arity === 0) return (f) => f.flatMap((x) => this.allChildren(x));
        break;
      case 'descendants':
        if (arity === 0)
          return (f) => {
            const out: Coll = [];
            let level = f;
            while (level.length) {
              level = level.flatMap((x) => this.allChildren(x));
              out.push(...level);
            }
            return out;
          };
        break;
      case 'hasValue':
        if (arity === 0) return (f) => bool(f.length === 1 && isPrimitiveValue(f[0].v));
        break;
      case 'ofType':
      case 'as':
        if (arity === 1) {
          const type = typeName(params[0]);
          return (f) => f.filter((x) => this.isType(x, type));
        }
        break;
      case 'is':
        if (arity === 1) {
          const type = typeName(params[0]);
          return (f) => {
            if (f.length === 0) return EMPTY;
            if (f.length > 1) throw FALLBACK;
            return bool(this.isType(f[0], type));
          };
        }
        break;
      case 'iif':
        if (arity === 2 || arity === 3) {
          const crit = value(0);
          const yes = value(1);
          const no = arity === 3 ? value(2) : undefined;
          return (_f, s, c) => (isTrue(crit(s, c)) ? yes(s, c) : no ? no(s, c) : EMPTY);
        }
        break;
      case 'intersect':
      case 'combine':
        if (arity === 1) {
          const other = value(0);
          const intersect = name === 'intersect';
          return (f, s, c) => {
            const o = other(s, c);
            return intersect ? distinct(f.filter((x) => o.some((y) => equal(x, y) === true))) : [...f, ...o];
          };
        }
        break;
      case 'startsWith':
      case 'endsWith':
      case 'contains':
      case 'matches':
        if (arity === 1) {
          const arg = value(0);
          return (f, s, c) => {
            const str = singletonString(f);
            if (str === undefined) return EMPTY;
            const a = singletonString(arg(s, c));
            if (a === undefined) return EMPTY;
            if (name === 'startsWith') return bool(str.startsWith(a));
            if (name === 'endsWith') return bool(str.endsWith(a));
            if (name === 'contains') return bool(str.includes(a));
            return bool(regex(a).test(str));
          };
        }
        break;
      case 'replaceMatches':
        if (arity === 2) {
          const re = value(0);
          const sub = value(1);
          return (f, s, c) => {
            const str = singletonString(f);
            const r = singletonString(re(s, c));
            const w = singletonString(sub(s, c));
            if (str === undefined || r === undefined || w === undefined) return EMPTY;
            return [{ v: str.replace(new RegExp(r, 'g'), w), t: 'System.String' }];
          };
        }
        break;
      case 'substring':
        if (arity === 1 || arity === 2) {
          const start = value(0);
          const len = arity === 2 ? value(1) : undefined;
          return (f, s, c) => {
            const str = singletonString(f);
            const st = start(s, c);
            if (str === undefined || st.length !== 1 || typeof st[0].v !== 'number') return EMPTY;
            const from = st[0].v;
            if (from < 0 || from >= str.length) return EMPTY;
            if (!len) return [{ v: str.slice(from), t: 'System.String' }];
            const l = len(s, c);
            if (l.length !== 1 || typeof l[0].v !== 'number') return EMPTY;
            return [{ v: str.substr(from, l[0].v), t: 'System.String' }];
          };
        }
        break;
      case 'toInteger':
        if (arity === 0)
          return (f) => {
            if (f.length === 0) return EMPTY;
            if (f.length > 1) throw FALLBACK;
            const v = f[0].v;
            if (typeof v === 'number') return Number.isInteger(v) ? [{ v, t: 'System.Integer' }] : EMPTY;
            if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return [{ v: Number(v), t: 'System.Integer' }];
            if (typeof v === 'boolean') return [{ v: v ? 1 : 0, t: 'System.Integer' }];
            return EMPTY;
          };
        break;
      case 'toString':
        if (arity === 0)
          return (f) => {
            if (f.length === 0) return EMPTY;
            if (f.length > 1) throw FALLBACK;
            const v = f[0].v;
            if (typeof v === 'string') return [{ v, t: 'System.String' }];
            if (typeof v === 'boolean') return [{ v: String(v), t: 'System.String' }];
            throw FALLBACK; // number formatting (decimal precision) is fhirpath.js's business
          };
        break;
      default:
        break;
    }
    throw new Unsupported();
  }

  private logic(ch: Ast[], op: (a: boolean | undefined, b: () => boolean | undefined) => boolean | undefined): Expr {
    const l = this.expr(ch[0]);
    const r = this.expr(ch[1]);
    return (self, c) => {
      const res = op(singletonBoolean(l(self, c)), () => singletonBoolean(r(self, c)));
      return res === undefined ? EMPTY : bool(res);
    };
  }

  private equality(ch: Ast[], op: string): Expr {
    if (op !== '=' && op !== '!=') throw new Unsupported();
    const l = this.expr(ch[0]);
    const r = this.expr(ch[1]);
    const negate = op === '!=';
    return (self, c) => {
      const a = l(self, c);
      const b = r(self, c);
      if (a.length === 0 || b.length === 0) return EMPTY;
      if (a.length !== b.length) return bool(negate);
      let result: boolean | undefined = true;
      for (let i = 0; i < a.length && result; i++) {
        const e = equal(a[i], b[i]);
        if (e === undefined) result = undefined;
        else if (!e) result = false;
      }
      if (result === undefined) return EMPTY;
      return bool(negate ? !result : result);
    };
  }

  private inequality(ch: Ast[], op: string): Expr {
    const l = this.expr(ch[0]);
    const r = this.expr(ch[1]);
    return (self, c) => {
      const a = l(self, c);
      const b = r(self, c);
      if (a.length === 0 || b.length === 0) return EMPTY;
      if (a.length > 1 || b.length > 1) throw FALLBACK;
      const cmp = compare(a[0], b[0]);
      if (cmp === undefined) return EMPTY;
      switch (op) {
        case '<':
          return bool(cmp < 0);
        case '<=':
          return bool(cmp <= 0);
        case '>':
          return bool(cmp > 0);
        default:
          return bool(cmp >= 0);
      }
    };
  }

  private additive(ch: Ast[], op: string): Expr {
    const l = this.expr(ch[0]);
    const r = this.expr(ch[1]);
    if (op === '&') {
      return (self, c) => {
        const a = singletonString(l(self, c)) ?? '';
        const b = singletonString(r(self, c)) ?? '';
        return [{ v: a + b, t: 'System.String' }];
      };
    }
    if (op !== '+') throw new Unsupported();
    return (self, c) => {
      const a = l(self, c);
      const b = r(self, c);
      if (a.length === 0 || b.length === 0) return EMPTY;
      if (a.length > 1 || b.length > 1) throw FALLBACK;
      const x = a[0].v;
      const y = b[0].v;
      if (typeof x === 'string' && typeof y === 'string') return [{ v: x + y, t: 'System.String' }];
      if (typeof x === 'number' && typeof y === 'number' && Number.isInteger(x) && Number.isInteger(y)) {
        return [{ v: x + y, t: 'System.Integer' }];
      }
      throw FALLBACK;
    };
  }
}

function invalid(): boolean | undefined {
  throw new Unsupported();
}

function and(a: boolean | undefined, b: () => boolean | undefined): boolean | undefined {
  if (a === false) return false;
  const y = b();
  if (y === false) return false;
  return a === true && y === true ? true : undefined;
}

function or(a: boolean | undefined, b: () => boolean | undefined): boolean | undefined {
  if (a === true) return true;
  const y = b();
  if (y === true) return true;
  return a === false && y === false ? false : undefined;
}

function xor(a: boolean | undefined, b: () => boolean | undefined): boolean | undefined {
  const y = b();
  return a === undefined || y === undefined ? undefined : a !== y;
}

function implies(a: boolean | undefined, b: () => boolean | undefined): boolean | undefined {
  if (a === false) return true;
  const y = b();
  if (a === true) return y;
  return y === true ? true : undefined;
}

function literal(n: Ast): Expr {
  const text = n.text ?? '';
  switch (n.type) {
    case 'StringLiteral': {
      const v: Coll = [{ v: unescape(text.slice(1, -1)), t: 'System.String' }];
      return () => v;
    }
    case 'NumberLiteral': {
      const num = Number(text);
      const v: Coll = [{ v: num, t: text.includes('.') ? 'System.Decimal' : 'System.Integer' }];
      return () => v;
    }
    case 'BooleanLiteral': {
      const v = bool(text === 'true');
      return () => v;
    }
    case 'NullLiteral':
      return () => EMPTY;
    default:
      throw new Unsupported();
  }
}

function unescape(s: string): string {
  return s.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_m, e: string) => {
    if (e.length === 5) return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t', f: '\f' } as Record<string, string>)[e] ?? e;
  });
}

function typeName(n: Ast): string {
  // A type argument is parsed as an expression (`ofType(Quantity)`) or a TypeSpecifier.
  const text = flatText(n);
  if (!/^[A-Za-z][A-Za-z0-9_.]*$/.test(text)) throw new Unsupported();
  return text;
}

function flatText(n: Ast): string {
  if (n.type === 'Identifier') return n.text ?? '';
  return (n.children ?? []).map(flatText).join(n.type === 'QualifiedIdentifier' ? '.' : '');
}

function isTrue(c: Coll): boolean {
  if (c.length === 0) return false;
  if (c.length === 1) {
    const v = c[0].v;
    if (typeof v === 'boolean') return v;
  }
  throw FALLBACK; // truthiness of a non-boolean: fhirpath.js decides
}

function singletonBoolean(c: Coll): boolean | undefined {
  if (c.length === 0) return undefined;
  if (c.length === 1 && typeof c[0].v === 'boolean') return c[0].v;
  throw FALLBACK;
}

function singletonString(c: Coll): string | undefined {
  if (c.length === 0) return undefined;
  if (c.length === 1 && typeof c[0].v === 'string') return c[0].v;
  if (c.length === 1 && c[0].v === NO_VALUE) return undefined;
  throw FALLBACK;
}

function isPrimitiveValue(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

const regexCache = new Map<string, RegExp>();
function regex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    // FHIRPath matches() is a partial match unless the pattern anchors itself.
    re = new RegExp(source, 's'); // the flags fhirpath.js uses
    regexCache.set(source, re);
  }
  return re;
}

/** FHIRPath equality of two items: true, false, or undefined (unknown, e.g. dates of different precision). */
function equal(a: Item, b: Item): boolean | undefined {
  const x = a.v;
  const y = b.v;
  if (x === NO_VALUE || y === NO_VALUE) throw FALLBACK;
  if (typeof x === 'string' && typeof y === 'string') {
    if (DATE_TYPES.has(a.t) || DATE_TYPES.has(b.t)) {
      const c = compareDates(x, y);
      return c === undefined ? undefined : c === 0;
    }
    return x === y;
  }
  if (typeof x === 'number' && typeof y === 'number') return x === y;
  if (typeof x === 'boolean' && typeof y === 'boolean') return x === y;
  if (typeof x === 'object' && typeof y === 'object') {
    if (a.t !== b.t && (a.t.includes('Quantity') || b.t.includes('Quantity'))) throw FALLBACK;
    return deepEqual(x, y);
  }
  if (typeof x !== typeof y) {
    // A string compared with a number, a Quantity with a literal...: defer to fhirpath.js.
    throw FALLBACK;
  }
  return false;
}

function compare(a: Item, b: Item): number | undefined {
  const x = a.v;
  const y = b.v;
  if (typeof x === 'number' && typeof y === 'number') return x - y;
  if (typeof x === 'string' && typeof y === 'string') {
    if (DATE_TYPES.has(a.t) || DATE_TYPES.has(b.t)) return compareDates(x, y);
    if (a.t === 'time' || b.t === 'time') {
      if (x.length !== y.length) throw FALLBACK;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof x === 'object' && x && typeof y === 'object' && y) {
    // Quantities in the same unit compare by value; other units need UCUM: fhirpath.js.
    const p = x as Record<string, unknown>;
    const q = y as Record<string, unknown>;
    if (typeof p.value === 'number' && typeof q.value === 'number' && p.code === q.code && p.system === q.system && p.unit === q.unit) {
      if (p.comparator !== undefined || q.comparator !== undefined) throw FALLBACK;
      return p.value - q.value;
    }
  }
  throw FALLBACK;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * Compares two date/dateTime/instant strings the FHIRPath way: component by component down
 * to the precision both have; equal so far with different precision is unknown (undefined).
 * Times with zones are compared on the same instant when both reach seconds; any other mix
 * of times is fhirpath.js's business.
 */
function compareDates(x: string, y: string): number | undefined {
  const a = DATE_RE.exec(x);
  const b = DATE_RE.exec(y);
  if (!a || !b) throw FALLBACK;
  const aTime = a[4] !== undefined;
  const bTime = b[4] !== undefined;
  if (aTime || bTime) {
    if (!(aTime && bTime) || a[6] === undefined || b[6] === undefined || !a[8] || !b[8]) throw FALLBACK;
    const ta = Date.parse(x);
    const tb = Date.parse(y);
    if (Number.isNaN(ta) || Number.isNaN(tb)) throw FALLBACK;
    return ta - tb;
  }
  for (let i = 1; i <= 3; i++) {
    const p = a[i];
    const q = b[i];
    if (p === undefined || q === undefined) return p === q ? 0 : undefined;
    if (p !== q) return Number(p) - Number(q);
  }
  return 0;
}

function deepEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => deepEqual(v, y[i]));
  const kx = Object.keys(x as object);
  const ky = Object.keys(y as object);
  if (kx.length !== ky.length) return false;
  return kx.every((k) => deepEqual((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
}

function distinct(c: Coll): Coll {
  const out: Coll = [];
  for (const item of c) if (!out.some((o) => equal(o, item) === true)) out.push(item);
  return out;
}
