// One pass over a resource's JSON against the compiled type tables: unknown elements, JSON
// shapes, cardinality, primitive formats, required bindings, invariants, then the rules
// that need the whole resource (contained resources referenced, `#id` references
// resolvable) and, for Bundles, the whole bundle (bundle-rules.ts). Every problem becomes one
// issue located by a FHIRPath expression with indexes, e.g. `Patient.name[0].given[1]`.

import type { Issue, IssueCode, IssueSeverity } from '../outcome';
import { checkBundle } from './bundle-rules';
import { BundleTargets } from './bundle-resolve';
import type { CompiledType, Slot, TypeRegistry } from './compiled';
import { checkCoding } from './codings';
import { DATATYPE_CHECKS } from './datatypes';
import { checkExtensionList, type Holder } from './extensions';
import type { CompiledInvariant, Env } from './invariants';
import { checkXhtml } from './narrative';
import { clip, controlCharacterWarning, describe, PRIMITIVE_CHECKS } from './primitives';
import { checkReferenceTarget, LocalRef } from './references';

type Json = Record<string, unknown>;

/** Per resource being walked: the local (`#id`) references seen in it. */
interface ResourceFrame {
  /** The container's frame, for a contained resource. */
  parent?: ResourceFrame;
  /** `#...` references anywhere in this resource, its contained ones included. */
  localRefs: Set<string>;
  /** `#id` references to check against the container's contained ids (root frames only). */
  pending: LocalRef[];
  /** Contained resources (JSON objects) that refer to their container with `#`. */
  referToContainer: Set<object>;
  /** Set while walking this resource if it holds a `#` reference. */
  refersToContainer: boolean;
}

/** Per Bundle being walked: the `urn:` references its entries make. */
export interface BundleFrame {
  urnRefs: LocalRef[];
  /** The Bundle's entries, for resolving references into it (profiles' `resolve()`). */
  entries: readonly unknown[];
  targets?: BundleTargets;
}

const ELE_1 = 'ele-1: All FHIR elements must have a @value or children';

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Walker {
  readonly issues: Issue[] = [];
  private readonly segs: string[] = [];
  private frame: ResourceFrame | undefined;
  private bundle: BundleFrame | undefined;
  private env: Env = { resource: undefined, rootResource: undefined };
  private elementType: CompiledType | undefined;
  /** The element whose properties are being walked: where its extensions are used. */
  private holder: Holder = { path: '', type: '' };
  /** The url of the extension being walked, for its nested extensions. */
  private extensionUrl: string | undefined;
  /** The Codings being walked are under a required or extensible binding. */
  private strictCodes = false;

  /**
   * @param onResource called after each resource (top-level or inline) is walked, with its
   *   location: where the validator checks the profiles it claims.
   */
  constructor(
    private readonly reg: TypeRegistry,
    private readonly onResource?: (resource: Json, location: string, env: Env, walker: Walker) => void,
  ) {}

  /** The resource `reference` names in the Bundle being walked, if any. */
  resolveInBundle(reference: string): Json | undefined {
    const b = this.bundle;
    if (!b) return undefined;
    b.targets ??= new BundleTargets(b.entries);
    return b.targets.resource(reference);
  }

  isResourceType(name: string): boolean {
    return this.reg.kind(name) === 'resource';
  }

  /** The current location as a FHIRPath expression, plus an optional extra step. */
  location(extra = ''): string {
    return this.segs.join('') + extra;
  }

  issue(severity: IssueSeverity, code: IssueCode, diagnostics: string, extra = ''): void {
    this.issues.push({ severity, code, diagnostics, expression: [this.location(extra)] });
  }

  private err(code: IssueCode, diagnostics: string, extra = ''): void {
    this.issue('error', code, diagnostics, extra);
  }

  /**
   * Validates a resource at the current location: at the top (the location starts with its
   * type), or inline (contained, Bundle.entry.resource, Parameters.parameter.resource).
   */
  resource(value: unknown, inline = false, contained = false): void {
    if (!isObject(value)) {
      this.err('structure', `expected a resource (a JSON object), got ${describe(value)}`);
      return;
    }
    const rt = value.resourceType;
    if (typeof rt !== 'string') {
      this.err('required', 'a resource needs a resourceType', inline ? '.resourceType' : 'resourceType');
      return;
    }
    const t = this.reg.get(rt);
    if (!t || t.kind !== 'resource' || t.abstract) {
      this.err('structure', `unknown resource type '${clip(rt)}'`, inline ? '.resourceType' : 'resourceType');
      return;
    }
    if (!inline) this.segs.push(rt);
    const savedEnv = this.env;
    const savedFrame = this.frame;
    const savedBundle = this.bundle;
    const savedHolder = this.holder;
    const savedUrl = this.extensionUrl;
    this.holder = { path: t.path, type: rt };
    this.extensionUrl = undefined;
    this.env = { resource: value, rootResource: contained ? savedEnv.rootResource : value };
    const frame: ResourceFrame = {
      parent: contained ? savedFrame : undefined,
      localRefs: new Set(),
      pending: [],
      referToContainer: new Set(),
      refersToContainer: false,
    };
    this.frame = frame;
    const bundle: BundleFrame | undefined = rt === 'Bundle' ? { urnRefs: [], entries: Array.isArray(value.entry) ? value.entry : [] } : undefined;
    if (bundle) this.bundle = bundle;

    this.object(value, t, true);
    this.invariants(t.invariants, value, t, rt);
    this.containedRules(value, frame);
    if (bundle) checkBundle(value, bundle, this);
    this.onResource?.(value, this.location(), this.env, this);

    if (contained && savedFrame && frame.refersToContainer) savedFrame.referToContainer.add(value);
    this.frame = savedFrame;
    this.bundle = savedBundle;
    this.env = savedEnv;
    this.holder = savedHolder;
    this.extensionUrl = savedUrl;
    if (!inline) this.segs.pop();
  }

  /**
   * Validates a value meant for `slot` at `location` (a patch's value): as one item, or as
   * the whole array when `whole` and the element repeats.
   */
  valueAt(location: string, value: unknown, slot: Slot, whole: boolean): void {
    this.segs.push(location);
    if (whole && slot.el.array) this.array(value, slot, undefined);
    else if (value === null || Array.isArray(value)) this.err('structure', `'${slot.key}' takes one ${slot.type} here, not ${describe(value)}`);
    else this.value(value, slot);
    this.segs.pop();
  }

  private object(obj: Json, t: CompiledType, isResource: boolean): void {
    for (const key in obj) {
      if (isResource && key === 'resourceType') continue;
      const value = obj[key];
      if (value === undefined) continue; // not JSON: an absent property set in code
      const slot = t.slots.get(key);
      if (!slot) {
        this.unknown(key, t);
        continue;
      }
      this.segs.push(slot.seg);
      if (slot.companion) this.companion(value, obj[key.slice(1)], slot);
      else if (slot.el.array) this.array(value, slot, slot.primitive ? obj['_' + key] : undefined);
      else if (Array.isArray(value)) this.err('structure', `'${key}' holds at most one value, not an array`);
      else if (value === null) this.err('structure', `'${key}' must not be null`);
      else this.value(value, slot);
      this.segs.pop();
    }
    for (let i = 0; i < t.required.length; i++) {
      const r = t.required[i];
      let present = false;
      for (let k = 0; k < r.keys.length && !present; k++) present = obj[r.keys[k]] !== undefined;
      if (!present) this.err('required', `missing required element '${r.el.name}${r.el.choice ? '[x]' : ''}'`, '.' + r.step);
    }
    for (let i = 0; i < t.counted.length; i++) this.cardinality(obj, t.counted[i]);
    for (let i = 0; i < t.choices.length; i++) {
      const keys = t.choices[i];
      let n = 0;
      for (let k = 0; k < keys.length; k++) if (obj[keys[k]] !== undefined) n++;
      if (n > 1) {
        const present = keys.filter((k) => obj[k] !== undefined);
        this.err('structure', `only one of ${present.join(', ')} may be present`, '.' + t.slots.get(present[1])!.step);
      }
    }
  }

  private cardinality(obj: Json, r: CompiledType['counted'][number]): void {
    let count = 0;
    for (const key of r.keys) {
      const v = obj[key];
      if (v === undefined) continue;
      count = Math.max(count, Array.isArray(v) ? v.length : 1);
    }
    const { min, max, name } = r.el;
    if (count === 0) return; // absence is the required check's business
    if (max >= 0 && count > max) {
      this.err('structure', max === 0 ? `'${name}' is not allowed here` : `'${name}' allows at most ${max} value(s), found ${count}`, '.' + r.step);
    } else if (count < min) {
      this.err('required', `'${name}' needs at least ${min} value(s), found ${count}`, '.' + r.step);
    }
  }

  private unknown(key: string, t: CompiledType): void {
    let hint = '';
    const choice = [...t.slots.values()].find((s) => s.el.choice && s.el.name === key);
    if (choice) hint = ` ('${key}[x]' is a choice: name the type, e.g. '${choice.key}')`;
    this.err('structure', `unknown element '${key}' in ${t.path}${hint}`, '.' + key);
  }

  private array(value: unknown, slot: Slot, companion: unknown): void {
    if (!Array.isArray(value)) {
      this.err('structure', `'${slot.key}' must be an array`);
      return;
    }
    if (value.length === 0) {
      this.err('invariant', `${ELE_1}: an array must not be empty`);
      return;
    }
    const comp = Array.isArray(companion) ? companion : undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      this.segs.push(index(i));
      if (item === null) {
        if (!comp || comp[i] === null || comp[i] === undefined) {
          this.err('structure', `null in '${slot.key}' needs a matching entry in '_${slot.key}'`);
        }
      } else if (Array.isArray(item)) {
        this.err('structure', `an item of '${slot.key}' must not be an array`);
      } else {
        this.value(item, slot);
      }
      this.segs.pop();
    }
    if (slot.type === 'Extension') {
      checkExtensionList(value, slot.key === 'modifierExtension', this.holder, this.extensionUrl, this.reg, this);
    }
  }

  /** `_name`: the id and extensions of a primitive, whose extensions are used on the primitive's element. */
  private companion(value: unknown, primary: unknown, slot: Slot): void {
    const savedHolder = this.holder;
    const savedUrl = this.extensionUrl;
    this.holder = slot;
    this.extensionUrl = undefined;
    this.companionValue(value, primary, slot);
    this.holder = savedHolder;
    this.extensionUrl = savedUrl;
  }

  /** `_name`'s value: one Element, or an array aligned with the values if repeating. */
  private companionValue(value: unknown, primary: unknown, slot: Slot): void {
    if (!slot.el.array) {
      if (Array.isArray(value)) this.err('structure', `'${slot.key}' holds at most one value, not an array`);
      else this.element(value);
      return;
    }
    if (!Array.isArray(value)) {
      this.err('structure', `'${slot.key}' must be an array`);
      return;
    }
    if (Array.isArray(primary) && primary.length !== value.length) {
      this.err('structure', `'${slot.key}' must have as many entries as '${slot.key.slice(1)}' (${value.length} vs ${primary.length})`);
    }
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item === null) {
        if (!Array.isArray(primary) || primary[i] === null || primary[i] === undefined) {
          this.segs.push(index(i));
          this.err('structure', `entry ${i} of '${slot.key}' and of '${slot.key.slice(1)}' are both null`);
          this.segs.pop();
        }
        continue;
      }
      this.segs.push(index(i));
      this.element(item);
      this.segs.pop();
    }
  }

  private element(value: unknown): void {
    this.complex(value, (this.elementType ??= this.reg.get('Element')!));
  }

  private value(v: unknown, slot: Slot): void {
    if (slot.primitive) this.primitive(v, slot);
    else if (slot.isResource) this.resource(v, true, slot.key === 'contained');
    else {
      const t = this.reg.get(slot.type);
      const savedHolder = this.holder;
      const savedUrl = this.extensionUrl;
      const savedStrict = this.strictCodes;
      // A CodeableConcept's binding covers its codings (CodeableConcept.coding has none of its own).
      if (slot.type === 'CodeableConcept' || (slot.type === 'Coding' && savedHolder.type !== 'CodeableConcept')) {
        const strength = slot.el.binding?.strength;
        this.strictCodes = strength === 'required' || strength === 'extensible';
      }
      this.holder = slot;
      this.extensionUrl = slot.type !== 'Extension' ? undefined : isObject(v) && typeof v.url === 'string' ? v.url : '';
      const ok = !!t && this.complex(v, t);
      this.holder = savedHolder;
      this.extensionUrl = savedUrl;
      this.strictCodes = savedStrict;
      // Not an object, or empty: already one issue; the element's invariants would only repeat it.
      if (!ok) return;
      if (slot.valueSet && (slot.type === 'CodeableConcept' || slot.type === 'Coding')) this.binding(v as Json, slot);
      if (slot.type === 'Reference') this.reference(v as Json, slot);
    }
    if (slot.invariants.length) {
      const type = slot.type === 'Resource' && isObject(v) && typeof v.resourceType === 'string' ? v.resourceType : slot.type;
      this.invariants(slot.invariants, v, slot.primitive ? undefined : this.reg.get(type), type);
    }
  }

  /** Validates an object of a complex type; false when it is not a non-empty object. */
  private complex(v: unknown, t: CompiledType): boolean {
    if (!isObject(v)) {
      this.err('structure', `expected ${t.path} (a JSON object), got ${describe(v)}`);
      return false;
    }
    let content = false;
    for (const k in v) {
      if (k !== 'id') {
        content = true;
        break;
      }
    }
    if (!content) {
      this.err('invariant', `${ELE_1}: an element must not be empty`);
      return false;
    }
    this.object(v, t, false);
    if (t.name === 'Extension') this.extension(v, t);
    if (t.name === 'Coding') checkCoding(v, this, this.reg, this.strictCodes);
    else {
      const check = DATATYPE_CHECKS.get(t.name);
      if (check) check(v, this);
    }
    if (t.invariants.length) this.invariants(t.invariants, v, t, t.name);
    return true;
  }

  private primitive(v: unknown, slot: Slot): void {
    const problem = PRIMITIVE_CHECKS[slot.type](v);
    if (problem) {
      this.err(problem.code, problem.diagnostics);
      return;
    }
    if (typeof v !== 'string') return;
    if (slot.type === 'xhtml') {
      const bad = checkXhtml(v);
      if (bad) this.err('invariant', `${bad.key}: ${bad.diagnostics}`);
      return;
    }
    if (slot.valueSet && !slot.valueSet.codes.has(v)) {
      this.err('code-invalid', `'${clip(v)}' is not a code of the required value set ${slot.valueSet.url}`);
    } else if (slot.format) {
      const problem = slot.format(v);
      if (problem) this.err('code-invalid', problem);
    }
    if (slot.el.maxLength !== undefined && v.length > slot.el.maxLength) {
      this.err('too-long', `'${slot.key}' is ${v.length} characters long; at most ${slot.el.maxLength} allowed`);
    }
    if ((slot.type === 'string' || slot.type === 'markdown') && v.length < 4096) {
      const warning = controlCharacterWarning(v);
      if (warning) this.issue('warning', 'value', warning);
    }
    // A canonical `#id` must name a contained resource; a uri or url `#...` counts as a
    // reference for dom-3 when it names one, and is otherwise any uri (meta.source is
    // `#<request id>` by convention, and servers write it so).
    if (v.charCodeAt(0) === 35 /* # */ && (slot.type === 'canonical' || slot.type === 'uri' || slot.type === 'url')) {
      this.localRef(v, false, slot.type === 'canonical');
    }
  }

  /** ext-1: an extension has either nested extensions or a value, not both, not neither. */
  private extension(v: Json, t: CompiledType): void {
    let hasValue = false;
    for (const k in v) {
      const s = t.slots.get(k);
      if (s && s.el.name === 'value') {
        hasValue = true;
        break;
      }
    }
    if ((v.extension !== undefined) === hasValue) {
      this.err('invariant', 'ext-1: Must have either extensions or value[x], not both');
    }
  }

  private binding(v: Json, slot: Slot): void {
    const vs = slot.valueSet!;
    const codings = slot.type === 'Coding' ? [v] : Array.isArray(v.coding) ? (v.coding as unknown[]) : [];
    if (codings.length === 0) return; // text only: nothing coded to check
    for (const c of codings) {
      if (!isObject(c)) continue;
      const system = typeof c.system === 'string' ? c.system : undefined;
      const code = typeof c.code === 'string' ? c.code : undefined;
      if (code !== undefined && system !== undefined && vs.bySystem.get(system)?.has(code)) return;
    }
    const shown = codings
      .filter(isObject)
      .map((c) => `${String(c.system ?? '')}|${String(c.code ?? '')}`)
      .join(', ');
    this.err('code-invalid', `none of the codings (${clip(shown)}) is in the required value set ${vs.url}`);
  }

  private reference(v: Json, slot: Slot): void {
    const ref = v.reference;
    if (typeof ref === 'string' && ref.length > 0) {
      const first = ref.charCodeAt(0);
      if (first === 35 /* # */) this.localRef(ref, true);
      else if (ref.startsWith('urn:') && this.bundle) this.bundle.urnRefs.push({ ref, location: this.location('.reference') });
    }
    const problem = checkReferenceTarget(v, slot.ref.targets, (name) => this.reg.kind(name) === 'resource');
    if (problem) this.err(problem.code, problem.diagnostics, problem.field ? '.' + problem.field : '');
  }

  /** `mustResolve`: a contained resource must have the id (references, canonicals; not plain uris). */
  private localRef(ref: string, reference = false, mustResolve = true): void {
    if (!this.frame) return;
    if (ref === '#') {
      this.frame.refersToContainer = true;
      return;
    }
    let root = this.frame;
    for (let f: ResourceFrame | undefined = this.frame; f; f = f.parent) {
      f.localRefs.add(ref);
      root = f;
    }
    if (reference || mustResolve) root.pending.push({ ref, location: this.location(), reference });
  }

  /** dom-3 (each contained resource is referenced) and ref-1 (each `#id` names one). */
  private containedRules(res: Json, frame: ResourceFrame): void {
    const contained = Array.isArray(res.contained) ? res.contained : [];
    const ids = new Set<string>();
    for (let i = 0; i < contained.length; i++) {
      const c = contained[i];
      if (!isObject(c) || typeof c.resourceType !== 'string') continue;
      const id = typeof c.id === 'string' ? c.id : undefined;
      if (id) ids.add(id);
      if ((!id || !frame.localRefs.has('#' + id)) && !frame.referToContainer.has(c)) {
        this.err('invariant', `dom-3: the contained ${c.resourceType}${id ? ` '${id}'` : ''} is not referenced from elsewhere in the resource and does not refer to its container`, `.contained[${i}]`);
      }
    }
    if (frame.parent) return; // `#id` references resolve in the root container
    for (const p of frame.pending) {
      if (!ids.has(p.ref.slice(1))) {
        this.issues.push({
          severity: 'error',
          code: 'invariant',
          diagnostics: p.reference ? `ref-1: the local reference '${clip(p.ref)}' does not name a contained resource` : `the local canonical '${clip(p.ref)}' does not name a contained resource`,
          expression: [p.location],
        });
      }
    }
  }

  private invariants(list: CompiledInvariant[], node: unknown, t: CompiledType | undefined, type: string): void {
    for (let i = 0; i < list.length; i++) {
      const inv = list[i];
      if (inv.skipUnless && t && isObject(node) && !reads(node, t, inv.skipUnless)) continue;
      if (inv.evaluate(node, type, this.env) === false) this.err('invariant', `${inv.key}: ${inv.human}`);
    }
  }
}

const INDEXES = Array.from({ length: 256 }, (_, i) => `[${i}]`);
function index(i: number): string {
  return i < INDEXES.length ? INDEXES[i] : `[${i}]`;
}

/** Whether the node has any element an invariant reads. */
function reads(node: Json, t: CompiledType, names: ReadonlySet<string>): boolean {
  for (const k in node) {
    const s = t.slots.get(k);
    if (s && names.has(s.el.name)) return true;
  }
  return false;
}
