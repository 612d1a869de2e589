// Operators' custom profiles (StructureDefinitions with derivation `constraint`), checked on
// top of the core validation for resources that claim them in meta.profile (or that a
// caller names). What a profile adds to its base is read from its differential (the snapshot
// when there is none): cardinality, fixed and pattern values, allowed types of a choice,
// required bindings, maxLength and its own invariants. Slicing is checked from the snapshot
// (slicing.ts); extension definitions in a package are enforced where extensions are used.

import type { Issue } from '../outcome';
import type { TypeRegistry } from './compiled';
import type { CompiledInvariant } from './invariants';
import type { ElementDefinitionLike, StructureDefinitionLike } from './model/build';
import { maxOf } from './model/build';
import { buildExtensions, extensionValueSets, isExtensionDefinition, type ExtensionDefinitionLike } from './model/extensions';
import type { ModelInvariant, ModelValueSet } from './model/spec';
import { ValueSetExpander } from './model/valuesets';
import type { ConformanceResource } from './packages';
import { clip, isPrimitiveType } from './primitives';
import { buildSliceTree, deepEqual, matchesPattern, SliceChecker, type SliceNode } from './slicing';

interface ProfileElement {
  path: string;
  /** Steps below the root, e.g. ['name', 'family']; a last step may be a choice (`value[x]`). */
  steps: string[];
  min?: number;
  max?: number;
  fixed?: unknown;
  pattern?: unknown;
  /** For a constrained choice: the type codes still allowed. */
  types?: string[];
  valueSet?: string;
  maxLength?: number;
  invariants: CompiledInvariant[];
}

export interface Profile {
  url: string;
  name: string;
  type: string;
  baseUrl?: string;
  elements: ProfileElement[];
  /** Invariants on the root element. */
  invariants: CompiledInvariant[];
  /** The slicing tree of its snapshot (inherited slices included), if it slices anything. */
  slices?: SliceNode;
}

interface Located {
  v: unknown;
  loc: string;
}

const CORE = 'http://hl7.org/fhir/StructureDefinition/';

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

function prefixed(el: ElementDefinitionLike, prefix: 'fixed' | 'pattern'): unknown {
  for (const k of Object.keys(el)) if (k.startsWith(prefix) && /^[A-Z]/.test(k.charAt(prefix.length))) return el[k];
  return undefined;
}

export class ProfileSet {
  private readonly profiles = new Map<string, Profile>();
  private readonly extraTerminology: ConformanceResource[] = [];
  private expander: ValueSetExpander | undefined;
  private readonly codes = new Map<string, Map<string, Set<string>> | null>();
  /** What could not be used, for the operator (logged at start, printed by the CLI). */
  readonly notes: string[] = [];

  constructor(private readonly reg: TypeRegistry) {}

  get size(): number {
    return this.profiles.size;
  }

  urls(): string[] {
    return [...this.profiles.keys()];
  }

  has(url: string): boolean {
    return this.profiles.has(stripVersion(url));
  }

  /** Adds the profiles, value sets and code systems among `resources`. */
  load(resources: ConformanceResource[]): void {
    for (const r of resources) {
      if (r.resourceType === 'ValueSet' || r.resourceType === 'CodeSystem') {
        this.extraTerminology.push(r);
        this.expander = undefined;
        this.codes.clear();
      }
    }
    this.loadExtensions(resources);
    for (const r of resources) {
      if (r.resourceType !== 'StructureDefinition') continue;
      const sd = r as unknown as StructureDefinitionLike;
      if (sd.derivation !== 'constraint' || sd.kind !== 'resource' || !sd.url) continue;
      if (!this.reg.has(sd.type)) {
        this.notes.push(`${sd.url}: profiles ${sd.type}, which is not an R4 resource type`);
        continue;
      }
      this.profiles.set(stripVersion(sd.url), this.compile(sd));
    }
  }

  /** Extension definitions: uses of them are then checked like those of the R4 registry. */
  private loadExtensions(resources: ConformanceResource[]): void {
    const defs = resources.filter((r) => isExtensionDefinition(r)) as unknown as ExtensionDefinitionLike[];
    if (!defs.length) return;
    const extensions = buildExtensions(defs);
    const valueSets: Record<string, ModelValueSet> = {};
    for (const url of extensionValueSets(extensions)) {
      const codes = this.valueSetCodes(url);
      // Unknown value sets are not judged (null), like those that need a terminology server.
      valueSets[url] = codes ? Object.fromEntries([...codes].map(([system, set]) => [system, [...set]])) : null;
    }
    this.reg.addExtensions(extensions, valueSets);
  }

  private compile(sd: StructureDefinitionLike): Profile {
    const list = sd.differential?.element?.length ? sd.differential.element : (sd.snapshot?.element ?? []);
    const profile: Profile = {
      url: stripVersion(sd.url),
      name: sd.name,
      type: sd.type,
      baseUrl: sd.baseDefinition ? stripVersion(sd.baseDefinition) : undefined,
      elements: [],
      invariants: [],
    };
    const slices = buildSliceTree(sd.snapshot?.element ?? []);
    if (slices) profile.slices = slices;
    else if (list.some((el) => el.sliceName)) this.notes.push(`${profile.url}: slices without a snapshot are not evaluated; the rest of the profile is`);
    for (const el of list) {
      if (el.sliceName || el.id?.includes(':')) continue; // slicing.ts
      const own = (el.constraint ?? []).filter((c): c is ModelInvariant & { source?: string } => !!c.expression && c.severity === 'error' && (!c.source || stripVersion(c.source) === profile.url));
      const steps = el.path.split('.').slice(1);
      const base = el.path.replace(/\[x\]/g, '');
      const invariants = own
        .map((c) => this.reg.compileExtraInvariant({ key: c.key, severity: 'error', human: c.human, expression: c.expression }, base))
        .filter((c): c is CompiledInvariant => c !== null);
      if (steps.length === 0) {
        profile.invariants.push(...invariants);
        continue;
      }
      const pe: ProfileElement = { path: el.path, steps, invariants };
      if (el.min !== undefined) pe.min = el.min;
      if (el.max !== undefined) pe.max = maxOf(el.max);
      const fixed = prefixed(el, 'fixed');
      if (fixed !== undefined) pe.fixed = fixed;
      const pattern = prefixed(el, 'pattern');
      if (pattern !== undefined) pe.pattern = pattern;
      if (el.path.endsWith('[x]') && el.type?.length) pe.types = el.type.map((t) => t.code);
      if (el.binding?.strength === 'required' && el.binding.valueSet) pe.valueSet = stripVersion(el.binding.valueSet);
      if (el.maxLength) pe.maxLength = el.maxLength;
      profile.elements.push(pe);
    }
    return profile;
  }

  /**
   * Issues of `resource` (located at `loc`) against the profile `url` and the profiles it
   * derives from. `resolve` finds the resource a reference names in the enclosing Bundle
   * (for slices discriminated by `resolve()`).
   */
  check(
    resource: Record<string, unknown>,
    url: string,
    loc: string,
    env: { resource: unknown; rootResource: unknown },
    resolve: (reference: string) => Record<string, unknown> | undefined = () => undefined,
  ): Issue[] {
    const issues: Issue[] = [];
    const seen = new Set<string>();
    let sliced = false;
    for (let p = this.profiles.get(stripVersion(url)); p && !seen.has(p.url); p = p.baseUrl ? this.profiles.get(p.baseUrl) : undefined) {
      seen.add(p.url);
      if (p.type !== resource.resourceType) {
        issues.push(err('invalid', `profile ${p.url} is for ${p.type}, not ${String(resource.resourceType)}`, loc));
        break;
      }
      // The most derived snapshot holds every inherited slice: its bases' are not checked again.
      if (p.slices && !sliced) {
        sliced = true;
        new SliceChecker(p.slices, p.url, { conforms: (v, u) => this.conforms(v, u, env, resolve), resolve }).check(resource, loc, issues);
      }
      for (const inv of p.invariants) {
        if (inv.evaluate(resource, p.type, env) === false) issues.push(err('invariant', `${inv.key}: ${inv.human} (profile ${p.url})`, loc));
      }
      for (const el of p.elements) this.checkElement(resource, el, p, loc, env, issues);
    }
    return issues;
  }

  /** Whether `value` conforms to the profile `url` (a core type's definition: has that type); undefined when not loaded. */
  private conformDepth = 0;
  private conforms(
    value: Record<string, unknown>,
    url: string,
    env: { resource: unknown; rootResource: unknown },
    resolve: (reference: string) => Record<string, unknown> | undefined,
  ): boolean | undefined {
    if (url.startsWith(CORE)) return value.resourceType === url.slice(CORE.length) || undefined;
    if (!this.profiles.has(url) || typeof value.resourceType !== 'string') return undefined;
    if (this.profiles.get(stripVersion(url))!.type !== value.resourceType) return false;
    // Profiles whose slices resolve references back and forth: undecidable past a depth, not endless.
    if (this.conformDepth > 8) return undefined;
    this.conformDepth++;
    try {
      return !this.check(value, url, '', { resource: value, rootResource: env.rootResource }, resolve).some((i) => i.severity === 'error');
    } finally {
      this.conformDepth--;
    }
  }

  private checkElement(resource: Record<string, unknown>, el: ProfileElement, p: Profile, loc: string, env: { resource: unknown; rootResource: unknown }, issues: Issue[]): void {
    let parents: Located[] = [{ v: resource, loc }];
    for (let i = 0; i < el.steps.length - 1; i++) parents = step(parents, el.steps[i]);
    const last = el.steps[el.steps.length - 1];
    const choice = last.endsWith('[x]') ? last.slice(0, -3) : undefined;
    const from = `(profile ${p.url})`;
    for (const parent of parents) {
      if (!isObject(parent.v)) continue;
      const obj = parent.v;
      const keys = choice
        ? [...new Set(Object.keys(obj).map((k) => (k.charCodeAt(0) === 95 /* _ */ ? k.slice(1) : k)))].filter(
            // A primitive choice may be present only as its `_` companion (a data-absent-reason).
            (k) => k.startsWith(choice) && /^[A-Z]/.test(k.charAt(choice.length)),
          )
        : obj[last] !== undefined || obj['_' + last] !== undefined
          ? [last]
          : [];
      let count = 0;
      const values: Located[] = [];
      for (const key of keys) {
        const v = obj[key] ?? obj['_' + key];
        const type = choice ? typeOfKey(key.slice(choice.length)) : '';
        const at = `${parent.loc}.${choice ? `${choice}.ofType(${type})` : key}`;
        if (Array.isArray(v)) {
          count += v.length;
          v.forEach((item, i) => values.push({ v: item, loc: `${at}[${i}]` }));
        } else {
          count += 1;
          values.push({ v, loc: at });
        }
        if (choice && el.types) {
          if (!el.types.includes(type)) {
            issues.push(err('structure', `type ${type} is not allowed for ${el.path} ${from} (allowed: ${el.types.join(', ')})`, at));
          }
        }
      }
      const at = `${parent.loc}.${choice ?? last}`;
      if (el.min !== undefined && count < el.min) {
        issues.push(err('required', `${el.path} needs at least ${el.min} value(s), found ${count} ${from}`, at));
      }
      if (el.max !== undefined && el.max >= 0 && count > el.max) {
        issues.push(err('structure', el.max === 0 ? `${el.path} is not allowed ${from}` : `${el.path} allows at most ${el.max} value(s), found ${count} ${from}`, at));
      }
      for (const value of values) {
        if (el.fixed !== undefined && !deepEqual(value.v, el.fixed)) {
          issues.push(err('value', `${el.path} must be exactly ${clip(JSON.stringify(el.fixed))} ${from}`, value.loc));
        }
        if (el.pattern !== undefined && !matchesPattern(el.pattern, value.v)) {
          issues.push(err('value', `${el.path} must match the pattern ${clip(JSON.stringify(el.pattern))} ${from}`, value.loc));
        }
        if (el.maxLength !== undefined && typeof value.v === 'string' && value.v.length > el.maxLength) {
          issues.push(err('too-long', `${el.path} is ${value.v.length} characters long; at most ${el.maxLength} allowed ${from}`, value.loc));
        }
        if (el.valueSet) this.checkBinding(value, el.valueSet, el.path, from, issues);
        for (const inv of el.invariants) {
          if (inv.evaluate(value.v, '', env) === false) issues.push(err('invariant', `${inv.key}: ${inv.human} ${from}`, value.loc));
        }
      }
    }
  }

  private checkBinding(value: Located, url: string, path: string, from: string, issues: Issue[]): void {
    const codes = this.valueSetCodes(url);
    if (codes === null) return; // not expandable offline: not judged
    if (codes === undefined) {
      issues.push({ severity: 'warning', code: 'not-found', diagnostics: `value set ${url} of ${path} is unknown ${from}`, expression: [value.loc] });
      return;
    }
    const inSet = (system: unknown, code: unknown): boolean =>
      typeof code === 'string' && (system === undefined ? [...codes.values()].some((s) => s.has(code)) : !!codes.get(String(system))?.has(code));
    const v = value.v;
    let ok: boolean;
    if (typeof v === 'string') ok = inSet(undefined, v);
    else if (isObject(v) && Array.isArray(v.coding)) ok = v.coding.some((c) => isObject(c) && inSet(c.system, c.code));
    else if (isObject(v) && v.code !== undefined) ok = inSet(v.system, v.code);
    else ok = true;
    if (!ok) issues.push(err('code-invalid', `${path} is not in the required value set ${url} ${from}`, value.loc));
  }

  /** Codes by system; null: known but not expandable; undefined: unknown value set. */
  private valueSetCodes(url: string): Map<string, Set<string>> | null | undefined {
    if (this.codes.has(url)) return this.codes.get(url) ?? null;
    if (!this.expander) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the core model is loaded only when a profile needs it
      const { coreExpander } = require('./model/core') as typeof import('./model/core');
      this.expander = coreExpander();
      for (const r of this.extraTerminology) this.expander.add(r as { resourceType: string; url?: string });
    }
    if (!this.expander.knows(url)) return undefined;
    const expanded = this.expander.expand(url);
    const map = expanded ? new Map(Object.entries(expanded).map(([s, c]) => [s, new Set(c)])) : null;
    this.codes.set(url, map);
    return map;
  }
}

/** The type a choice property's suffix names: `DateTime` → dateTime, `Quantity` → Quantity. */
function typeOfKey(suffix: string): string {
  const lower = suffix.charAt(0).toLowerCase() + suffix.slice(1);
  return isPrimitiveType(lower) ? lower : suffix;
}

function step(items: Located[], name: string): Located[] {
  const out: Located[] = [];
  for (const item of items) {
    if (!isObject(item.v)) continue;
    const v = item.v[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) v.forEach((x, i) => out.push({ v: x, loc: `${item.loc}.${name}[${i}]` }));
    else out.push({ v, loc: `${item.loc}.${name}` });
  }
  return out;
}

function err(code: Issue['code'], diagnostics: string, loc: string): Issue {
  return { severity: 'error', code, diagnostics, expression: [loc] };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export { matchesPattern };
