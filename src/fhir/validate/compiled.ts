// The model turned into lookup tables for the walker, one type at a time and only when a
// resource first needs it: JSON property → slot (element, type, FHIRPath segment), the
// required elements, the choice groups, the invariants with their compiled evaluators.

import { FORMATS_BY_PATH, FORMATS_BY_VALUE_SET, type CodeFormat } from './code-formats';
import { FastPathCompiler } from './fastpath';
import { compileInvariant, CompiledInvariant } from './invariants';
import type { Model, ModelElement, ModelExtension, ModelExtensionValue, ModelType, ModelTypeRef, ModelValueSet } from './model/spec';
import { isPrimitiveType } from './primitives';

export interface CompiledValueSet {
  url: string;
  /** Every code of the value set, whatever its system (for `code` elements). */
  codes: ReadonlySet<string>;
  bySystem: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * A code system shipped whole: code (case-folded when case-insensitive) → its display and
 * designations, each also trimmed, with runs of whitespace made one space, lower-cased.
 */
export interface CompiledCodeSystem {
  url: string;
  caseInsensitive: boolean;
  concepts: ReadonlyMap<string, { names: readonly string[]; normalised: readonly string[] }>;
}

export function normaliseDisplay(s: string): string {
  return s.trim().replace(/\s+/g, ' ').toLowerCase();
}

export interface CompiledExtensionValue {
  types: readonly string[];
  min: number;
  /** The required binding's codes; null when there is none or they cannot be known offline. */
  valueSet: CompiledValueSet | null;
}

/** An extension definition ready for checking uses of it (see extensions.ts). */
export interface CompiledExtension {
  url: string;
  contexts: readonly string[];
  max: number;
  modifier: boolean;
  closed: boolean;
  value?: CompiledExtensionValue;
  /** Nested extensions by url; absent when the extension takes none. */
  parts?: ReadonlyMap<string, { min: number; max: number; value?: CompiledExtensionValue }>;
}

export interface Slot {
  key: string;
  el: ModelElement;
  /** The type this JSON property holds (for a choice, the type its name selects). */
  type: string;
  ref: ModelTypeRef;
  primitive: boolean;
  /** The `_name` property that carries a primitive's id and extensions. */
  companion: boolean;
  /** The FHIRPath step for locations: `name`, or `value.ofType(Quantity)` for a choice. */
  step: string;
  /** `.` + step, ready to append to a location. */
  seg: string;
  /** The value is a resource (contained, Bundle.entry.resource...): dispatched on its resourceType. */
  isResource: boolean;
  /** Definition path of the element (`Patient.contact`), the base of its invariants. */
  path: string;
  invariants: CompiledInvariant[];
  /** The required binding's codes; null when they cannot be known offline. */
  valueSet?: CompiledValueSet | null;
  /** For a `code` bound to a value set of a system with a known syntax (BCP-47, MIME): its check. */
  format?: CodeFormat;
}

export interface RequiredElement {
  el: ModelElement;
  step: string;
  keys: string[];
}

export interface CompiledType {
  name: string;
  kind: ModelType['kind'];
  abstract: boolean;
  /** The definition path of the root (`Quantity` for SimpleQuantity). */
  path: string;
  slots: ReadonlyMap<string, Slot>;
  /** Element name → its value slots (several for a choice), for FHIRPath navigation. */
  byName: ReadonlyMap<string, Slot[]>;
  /** The type it specialises (Patient → DomainResource). */
  base?: string;
  required: RequiredElement[];
  /** Elements with a cardinality the JSON shape does not already enforce (max 0, bounded arrays, min > 1). */
  counted: RequiredElement[];
  /** For each choice element: its JSON keys (at most one may be present). */
  choices: string[][];
  invariants: CompiledInvariant[];
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export class TypeRegistry {
  private readonly compiled = new Map<string, CompiledType>();
  private readonly valueSets = new Map<string, CompiledValueSet | null>();
  private readonly fastCompiler = new FastPathCompiler(this);
  private readonly invariantCache = new Map<string, CompiledInvariant | null>();
  private readonly extensions = new Map<string, CompiledExtension | null>();
  private readonly codeSystems = new Map<string, CompiledCodeSystem>();

  constructor(private readonly model: Model) {}

  /** Every type name of the model. */
  names(): string[] {
    return Object.keys(this.model.types);
  }

  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.model.types, name);
  }

  kind(name: string): ModelType['kind'] | undefined {
    return this.has(name) ? this.model.types[name].kind : undefined;
  }

  /** Adds or replaces model types (custom profiles); compiled forms are rebuilt lazily. */
  addTypes(types: Record<string, ModelType>, valueSets: Record<string, ModelValueSet> = {}): void {
    Object.assign(this.model.types, types);
    Object.assign(this.model.valueSets, valueSets);
    for (const name of Object.keys(types)) this.compiled.delete(name);
  }

  /** Adds or replaces extension definitions (operators' packages). */
  addExtensions(extensions: Record<string, ModelExtension>, valueSets: Record<string, ModelValueSet> = {}): void {
    Object.assign(this.model.extensions, extensions);
    for (const [url, vs] of Object.entries(valueSets)) if (!Object.hasOwn(this.model.valueSets, url)) this.model.valueSets[url] = vs;
    this.extensions.clear();
  }

  /** The code system `url` when the model ships it whole, else null. */
  codeSystem(url: string): CompiledCodeSystem | null {
    const c = this.codeSystems.get(url);
    if (c) return c;
    const raw = Object.hasOwn(this.model.codeSystems, url) ? this.model.codeSystems[url] : undefined;
    if (!raw) return null;
    const caseInsensitive = !!raw.caseInsensitive;
    const concepts = new Map<string, { names: readonly string[]; normalised: readonly string[] }>();
    for (const [code, ...names] of raw.concepts) {
      concepts.set(caseInsensitive ? code.toLowerCase() : code, { names, normalised: names.map(normaliseDisplay) });
    }
    const compiled: CompiledCodeSystem = { url, caseInsensitive, concepts };
    this.codeSystems.set(url, compiled);
    return compiled;
  }

  /** The definition of the extension `url` (without version), or null when it is not known. */
  extension(url: string): CompiledExtension | null {
    let c = this.extensions.get(url);
    if (c !== undefined) return c;
    const def = Object.hasOwn(this.model.extensions, url) ? this.model.extensions[url] : undefined;
    c = def ? this.compileExtension(url, def) : null;
    // Unknown urls come from requests: remember only a bounded number of them.
    if (c || this.extensions.size < 10_000) this.extensions.set(url, c);
    return c;
  }

  private compileExtension(url: string, def: ModelExtension): CompiledExtension {
    const value = (v: ModelExtensionValue | undefined): CompiledExtensionValue | undefined => v && { types: v.types, min: v.min, valueSet: v.valueSet ? this.valueSet(v.valueSet) : null };
    const c: CompiledExtension = { url, contexts: def.contexts, max: def.max, modifier: !!def.modifier, closed: !!def.closed, value: value(def.value) };
    if (def.parts) {
      c.parts = new Map(Object.entries(def.parts).map(([u, p]) => [u, { min: p.min, max: p.max, value: value(p.value) }]));
    }
    return c;
  }

  get(name: string): CompiledType | undefined {
    let t = this.compiled.get(name);
    if (!t && this.has(name)) {
      const model = this.model.types[name];
      t = this.compile(name, model);
      // Registered before its invariants are compiled: checking an invariant on an empty
      // node navigates the type tables, which may lead back to this type.
      this.compiled.set(name, t);
      this.compileInvariants(t, model);
    }
    return t;
  }

  valueSet(url: string): CompiledValueSet | null {
    if (this.valueSets.has(url)) return this.valueSets.get(url)!;
    // Profiles' bindings name value sets too: only the table's own entries count.
    const raw = Object.hasOwn(this.model.valueSets, url) ? this.model.valueSets[url] : undefined;
    let vs: CompiledValueSet | null = null;
    if (raw) {
      const bySystem = new Map<string, ReadonlySet<string>>();
      const codes = new Set<string>();
      for (const [system, list] of Object.entries(raw)) {
        bySystem.set(system, new Set(list));
        for (const c of list) codes.add(c);
      }
      vs = { url, codes, bySystem };
    }
    this.valueSets.set(url, vs);
    return vs;
  }

  /** Whether `type` is `ancestor` or specialises it (Age is a Quantity, Patient a Resource). */
  isA(type: string, ancestor: string): boolean {
    for (let t: string | undefined = type, depth = 0; t && depth < 10; depth++) {
      if (t === ancestor) return true;
      t = this.has(t) ? this.model.types[t].base : undefined;
    }
    return false;
  }

  private compile(name: string, t: ModelType): CompiledType {
    const path = t.constrains ?? name;
    const slots = new Map<string, Slot>();
    const byName = new Map<string, Slot[]>();
    const required: RequiredElement[] = [];
    const counted: RequiredElement[] = [];
    const choices: string[][] = [];
    for (const el of t.elements) {
      const elPath = `${path}.${el.name}`;
      const invariants: CompiledInvariant[] = []; // filled by compileInvariants
      const keys: string[] = [];
      for (const ref of el.types) {
        const key = el.choice ? el.name + capitalise(ref.code) : el.name;
        const primitive = isPrimitiveType(ref.code);
        const step = el.choice ? `${el.name}.ofType(${ref.code})` : el.name;
        const type = ref.as ?? ref.code;
        const isResource = type === 'Resource' || this.kind(type) === 'resource';
        const slot: Slot = { key, el, type, ref, primitive, companion: false, step, seg: '.' + step, isResource, path: elPath, invariants };
        if (el.binding?.strength === 'required') slot.valueSet = this.valueSet(el.binding.valueSet);
        const format = el.binding && ref.code === 'code' ? (FORMATS_BY_PATH.get(elPath) ?? FORMATS_BY_VALUE_SET.get(el.binding.valueSet)) : undefined;
        if (format) slot.format = format;
        slots.set(key, slot);
        keys.push(key);
        const named = byName.get(el.name) ?? [];
        named.push(slot);
        byName.set(el.name, named);
        if (primitive) {
          slots.set('_' + key, { ...slot, key: '_' + key, companion: true, invariants: [] });
          keys.push('_' + key);
        }
      }
      const entry = { el, step: el.name, keys };
      if (el.min > 0) required.push(entry);
      if (el.max === 0 || el.min > 1 || (el.array && el.max > 1)) counted.push(entry);
      if (el.choice) choices.push(keys.filter((k) => !k.startsWith('_')));
    }
    const compiled: CompiledType = {
      name,
      kind: t.kind,
      abstract: !!t.abstract,
      path,
      slots,
      byName,
      base: t.base,
      required,
      counted,
      choices,
      invariants: [],
    };
    return compiled;
  }

  /** An invariant from outside the core model (a profile's), evaluated at definition path `base`. */
  compileExtraInvariant(inv: NonNullable<ModelElement['invariants']>[number], base: string): CompiledInvariant | null {
    return compileInvariant(inv, base, {}, this.fastCompiler, '', this.invariantCache);
  }

  private compileInvariants(t: CompiledType, model: ModelType): void {
    const emptyNode = t.kind === 'resource' ? { resourceType: t.path } : {};
    t.invariants.push(...this.invariantsFor(model.invariants, t.path, emptyNode, t.name));
    const done = new Set<ModelElement>();
    for (const slot of t.slots.values()) {
      if (!slot.el.invariants || done.has(slot.el)) continue;
      done.add(slot.el);
      const list = this.invariantsFor(slot.el.invariants, slot.path, {}, slot.el.types[0]?.code ?? 'Element');
      slot.invariants.push(...list); // one array, shared by the element's slots (choice variants)
    }
  }

  private invariantsFor(list: ModelElement['invariants'], base: string, emptyNode: unknown, nodeType: string): CompiledInvariant[] {
    const out: CompiledInvariant[] = [];
    for (const inv of list ?? []) {
      const c = compileInvariant(inv, base, emptyNode, this.fastCompiler, nodeType, this.invariantCache);
      if (c) out.push(c);
    }
    return out;
  }
}
