// Slicing in profiles (profiling.html#slicing): a repeating element is cut into named slices,
// each item goes to the slice its discriminators select (value, pattern, exists, type,
// profile; `resolve()` follows references inside the Bundle being validated), and then each
// slice's cardinality holds, a closed slicing has no other items, an ordered one keeps the
// slices' order, and the items of a slice meet the slice's own constraints (cardinality,
// fixed and pattern values of its children, and slicing below it). Built from the profile's
// snapshot, which carries the slices it inherits. Where an item's slice cannot be decided
// offline (a profile fhirguard has not loaded, a reference it cannot resolve, a discriminator
// path it does not evaluate), that element's slicing is not judged rather than guessed.

import type { Issue } from '../outcome';
import type { ElementDefinitionLike } from './model/build';
import { maxOf } from './model/build';
import { clip, isPrimitiveType } from './primitives';

type Json = Record<string, unknown>;

interface TypeSpec {
  code: string;
  profile?: string[];
  targetProfile?: string[];
}

interface Slicing {
  discriminators: { type: string; path: string }[];
  rules: string;
  ordered: boolean;
}

export interface SliceNode {
  id: string;
  /** The element's name in its parent (`section`, `value[x]`). */
  name: string;
  sliceName?: string;
  min: number;
  max: number;
  baseMin: number;
  baseMax: number;
  fixed?: unknown;
  pattern?: unknown;
  types: TypeSpec[];
  children: Map<string, SliceNode>;
  slicing?: Slicing;
  slices: SliceNode[];
  /** This node or one below it has slices. */
  sliced: boolean;
  /** This node or one below it constrains more than the base definition does. */
  constrained: boolean;
}

interface Located {
  v: unknown;
  loc: string;
  /** For a choice element's value: the type its key names. */
  type?: string;
}

/** What slicing needs from the rest of the validator. */
export interface SliceContext {
  /** Whether `value` conforms to the profile `url`; undefined when that cannot be known. */
  conforms(value: Json, url: string): boolean | undefined;
  /** The resource a reference names inside the Bundle being validated, if any. */
  resolve(reference: string): Json | undefined;
}

const SUPPORTED = new Set(['value', 'pattern', 'exists', 'type', 'profile']);

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

function prefixed(el: ElementDefinitionLike, prefix: 'fixed' | 'pattern'): unknown {
  for (const k of Object.keys(el)) if (k.startsWith(prefix) && /^[A-Z]/.test(k.charAt(prefix.length))) return el[k];
  return undefined;
}

function node(el: ElementDefinitionLike, id: string): SliceNode {
  const dot = el.path.lastIndexOf('.');
  const n: SliceNode = {
    id,
    name: el.path.slice(dot + 1),
    min: el.min ?? 0,
    max: maxOf(el.max),
    baseMin: el.base?.min ?? el.min ?? 0,
    baseMax: maxOf(el.base?.max ?? el.max),
    types: (el.type ?? []).map((t) => ({ code: t.code, profile: t.profile, targetProfile: t.targetProfile })),
    children: new Map(),
    slices: [],
    sliced: false,
    constrained: false,
  };
  if (el.sliceName) n.sliceName = el.sliceName;
  const fixed = prefixed(el, 'fixed');
  if (fixed !== undefined) n.fixed = fixed;
  const pattern = prefixed(el, 'pattern');
  if (pattern !== undefined) n.pattern = pattern;
  const slicing = el.slicing as { discriminator?: { type: string; path: string }[]; rules?: string; ordered?: boolean } | undefined;
  if (slicing) n.slicing = { discriminators: slicing.discriminator ?? [], rules: slicing.rules ?? 'open', ordered: !!slicing.ordered };
  return n;
}

/** The slicing tree of a snapshot, or undefined when the profile slices nothing. */
export function buildSliceTree(elements: readonly ElementDefinitionLike[]): SliceNode | undefined {
  if (!elements.some((e) => e.sliceName)) return undefined;
  const byId = new Map<string, SliceNode>();
  let root: SliceNode | undefined;
  for (const el of elements) {
    const id = el.id ?? el.path;
    const n = node(el, id);
    byId.set(id, n);
    if (!root) {
      root = n;
      continue;
    }
    if (el.sliceName && id.endsWith(':' + el.sliceName)) {
      // A slice (`Composition.section:meds`) or a reslice (`...:meds/active`) of the element before the colon.
      const head = id.slice(0, id.length - el.sliceName.length - 1);
      const slash = el.sliceName.lastIndexOf('/');
      byId.get(slash >= 0 ? `${head}:${el.sliceName.slice(0, slash)}` : head)?.slices.push(n);
      continue;
    }
    byId.get(id.slice(0, id.lastIndexOf('.')))?.children.set(n.name, n);
  }
  if (root) mark(root);
  return root;
}

function mark(n: SliceNode): void {
  let sliced = n.slices.length > 0;
  let constrained = sliced || n.fixed !== undefined || n.pattern !== undefined || n.min !== n.baseMin || n.max !== n.baseMax;
  for (const c of n.children.values()) {
    mark(c);
    sliced ||= c.sliced;
    constrained ||= c.constrained;
  }
  for (const s of n.slices) mark(s);
  n.sliced = sliced;
  n.constrained = constrained;
}

function typeOfKey(suffix: string): string {
  const lower = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return isPrimitiveType(lower) ? lower : suffix;
}

/** The values of the element `name` of `obj` (a choice's under each of its keys). */
function valuesOf(obj: Json, name: string, loc: string): Located[] {
  const out: Located[] = [];
  const push = (v: unknown, at: string, type?: string): void => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) v.forEach((x, i) => x !== null && out.push({ v: x, loc: `${at}[${i}]`, type }));
    else out.push({ v, loc: at, type });
  };
  if (name.endsWith('[x]')) {
    const base = name.slice(0, -3);
    for (const key of Object.keys(obj)) {
      if (key.length > base.length && key.startsWith(base) && /^[A-Z]/.test(key.charAt(base.length))) {
        const type = typeOfKey(key.slice(base.length));
        push(obj[key], `${loc}.${base}.ofType(${type})`, type);
      }
    }
  } else {
    push(obj[name], `${loc}.${name}`);
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Json)[k], (b as Json)[k]));
}

/** FHIR pattern[x]: every value in the pattern is present in the instance (arrays: each pattern item matches some item). */
export function matchesPattern(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    const values = Array.isArray(value) ? value : [value];
    return pattern.every((p) => values.some((v) => matchesPattern(p, v)));
  }
  if (isObject(pattern)) {
    if (!isObject(value)) return false;
    return Object.entries(pattern).every(([k, p]) => value[k] !== undefined && matchesPattern(p, value[k]));
  }
  return pattern === value;
}

/** Checks `resource` against the slicing of one profile. */
export class SliceChecker {
  constructor(
    private readonly root: SliceNode,
    private readonly profileUrl: string,
    private readonly ctx: SliceContext,
  ) {}

  check(resource: Json, loc: string, issues: Issue[]): void {
    this.children(this.root, resource, loc, false, issues);
  }

  private err(issues: Issue[], code: Issue['code'], diagnostics: string, loc: string): void {
    issues.push({ severity: 'error', code, diagnostics: `${diagnostics} (profile ${this.profileUrl})`, expression: [loc] });
  }

  /** The children of `n` in `obj`: those with slices below them, and inside a slice every constrained one. */
  private children(n: SliceNode, obj: unknown, loc: string, inSlice: boolean, issues: Issue[]): void {
    if (!isObject(obj)) return;
    for (const child of n.children.values()) {
      if (!(inSlice ? child.constrained : child.sliced)) continue;
      const values = valuesOf(obj, child.name, loc);
      const at = `${loc}.${child.name.replace('[x]', '')}`;
      if (inSlice) this.constraints(child, values, at, issues);
      if (child.slices.length && child.slicing) this.slice(child, values, at, issues);
      for (const v of values) this.children(child, v.v, v.loc, inSlice, issues);
    }
  }

  /** A slice's (or a slice's child's) own cardinality, fixed and pattern values. */
  private constraints(n: SliceNode, values: Located[], at: string, issues: Issue[]): void {
    const what = n.sliceName ? `slice '${n.sliceName}' of ${n.id.slice(0, n.id.lastIndexOf(':'))}` : n.id;
    if (n.min !== n.baseMin || n.max !== n.baseMax) {
      if (values.length < n.min) this.err(issues, 'required', `${what} needs at least ${n.min} value(s), found ${values.length}`, at);
      else if (n.max >= 0 && values.length > n.max) this.err(issues, 'structure', `${what} allows at most ${n.max} value(s), found ${values.length}`, at);
    }
    for (const v of values) {
      if (n.fixed !== undefined && !deepEqual(v.v, n.fixed)) this.err(issues, 'value', `${what} must be exactly ${clip(JSON.stringify(n.fixed))}`, v.loc);
      if (n.pattern !== undefined && !matchesPattern(n.pattern, v.v)) this.err(issues, 'value', `${what} must match the pattern ${clip(JSON.stringify(n.pattern))}`, v.loc);
    }
  }

  private slice(n: SliceNode, values: Located[], at: string, issues: Issue[]): void {
    const slicing = n.slicing!;
    if (!slicing.discriminators.length || slicing.discriminators.some((d) => !SUPPORTED.has(d.type))) return;
    const chosen: number[] = [];
    for (const v of values) {
      let pick = -1;
      for (let s = 0; s < n.slices.length && pick < 0; s++) {
        const m = this.matches(v, n.slices[s], slicing.discriminators);
        if (m === undefined) return; // undecidable: this element's slicing is not judged
        if (m) pick = s;
      }
      chosen.push(pick);
    }
    const slices = n.slices;
    for (let s = 0; s < slices.length; s++) {
      const slice = slices[s];
      const matched = values.filter((_, i) => chosen[i] === s);
      const name = `slice '${slice.sliceName}' of ${n.id}`;
      if (matched.length < slice.min) this.err(issues, 'required', `${name} needs at least ${slice.min} item(s), found ${matched.length}`, at);
      else if (slice.max >= 0 && matched.length > slice.max) this.err(issues, 'structure', `${name} allows at most ${slice.max} item(s), found ${matched.length}`, at);
      for (const v of matched) {
        if (slice.fixed !== undefined && !deepEqual(v.v, slice.fixed)) this.err(issues, 'value', `${name} must be exactly ${clip(JSON.stringify(slice.fixed))}`, v.loc);
        if (slice.pattern !== undefined && !matchesPattern(slice.pattern, v.v)) this.err(issues, 'value', `${name} must match the pattern ${clip(JSON.stringify(slice.pattern))}`, v.loc);
        this.children(slice, v.v, v.loc, true, issues);
        if (slice.slices.length && slice.slicing) this.slice(slice, [v], at, issues);
      }
    }
    if (slicing.rules === 'closed' || slicing.rules === 'openAtEnd' || slicing.ordered) {
      let last = -1;
      let unmatchedSeen = false;
      values.forEach((v, i) => {
        const s = chosen[i];
        if (s < 0) {
          if (slicing.rules === 'closed') this.err(issues, 'structure', `${n.id} is closed: this item fits none of its slices`, v.loc);
          unmatchedSeen = true;
          return;
        }
        if (slicing.rules === 'openAtEnd' && unmatchedSeen) this.err(issues, 'structure', `${n.id} keeps items outside its slices at the end`, v.loc);
        if (slicing.ordered && s < last) this.err(issues, 'structure', `${n.id} is ordered: slice '${slices[s].sliceName}' comes before '${slices[last].sliceName}'`, v.loc);
        last = Math.max(last, s);
      });
    }
  }

  /** Whether the item belongs to the slice; undefined when that cannot be decided. */
  private matches(item: Located, slice: SliceNode, discriminators: Slicing['discriminators']): boolean | undefined {
    for (const d of discriminators) {
      const m = this.discriminator(item, slice, d);
      if (m !== true) return m;
    }
    return true;
  }

  private discriminator(item: Located, slice: SliceNode, d: { type: string; path: string }): boolean | undefined {
    let path = d.path.trim();
    let resolve = false;
    if (path === 'resolve()' || path.endsWith('.resolve()')) {
      resolve = true;
      path = path === 'resolve()' ? '$this' : path.slice(0, -'.resolve()'.length);
    }
    if (path.startsWith('$this.')) path = path.slice(6);
    const steps = path === '$this' ? [] : path.split('.');
    if (steps.some((s) => !/^[A-Za-z][A-Za-z0-9]*(\[x\])?$/.test(s))) return undefined; // functions other than resolve()
    let target: SliceNode | undefined = slice;
    for (const s of steps) target = target?.children.get(s) ?? target?.children.get(s + '[x]');
    let items: Located[] = [item];
    for (const s of steps) items = items.flatMap((i) => (isObject(i.v) ? valuesOf(i.v, s, i.loc) : []));
    if (resolve) {
      const resolved: Located[] = [];
      for (const i of items) {
        const ref = isObject(i.v) && typeof i.v.reference === 'string' ? this.ctx.resolve(i.v.reference) : undefined;
        if (!ref) return undefined;
        resolved.push({ v: ref, loc: i.loc });
      }
      items = resolved;
    }
    switch (d.type) {
      case 'value':
      case 'pattern':
        return this.byValue(items, slice, target, steps);
      case 'exists': {
        if (!target) return undefined;
        if (target.min >= 1) return items.length > 0;
        if (target.max === 0) return items.length === 0;
        return undefined;
      }
      case 'type': {
        if (!target || !target.types.length) return undefined;
        const codes = target.types.map((t) => t.code);
        return items.some((i) => {
          const type = i.type ?? (isObject(i.v) && typeof i.v.resourceType === 'string' ? i.v.resourceType : undefined);
          return type !== undefined && codes.includes(type);
        });
      }
      case 'profile': {
        if (!target) return undefined;
        const urls = target.types.flatMap((t) => (resolve ? t.targetProfile : t.profile) ?? []);
        if (!urls.length) return undefined;
        let unknown = false;
        for (const i of items) {
          if (!isObject(i.v)) continue;
          for (const url of urls) {
            const c = this.ctx.conforms(i.v, stripVersion(url));
            if (c === true) return true;
            if (c === undefined) unknown = true;
          }
        }
        return unknown ? undefined : false;
      }
      default:
        return undefined;
    }
  }

  private byValue(items: Located[], slice: SliceNode, target: SliceNode | undefined, steps: string[]): boolean | undefined {
    if (target?.fixed !== undefined) return items.some((i) => deepEqual(i.v, target.fixed));
    if (target?.pattern !== undefined) return items.some((i) => matchesPattern(target.pattern, i.v));
    // An extension slice names its definition by the type's profile: its url is that.
    if (steps.length === 1 && steps[0] === 'url') {
      const profile = slice.types.find((t) => t.code === 'Extension')?.profile?.[0];
      if (profile) return items.some((i) => typeof i.v === 'string' && stripVersion(i.v) === stripVersion(profile));
    }
    return undefined;
  }
}
