// Turns StructureDefinition snapshots into the validator's model: one ModelType per
// resource, datatype and backbone element, each element reduced to what validation reads
// (JSON name, cardinality, types, binding, invariants). Used by the generator for the core
// R4 definitions and at load time for operators' custom profiles.

import { FORMATS_BY_VALUE_SET } from '../code-formats';
import type { Model, ModelElement, ModelInvariant, ModelType, ModelTypeRef, Strength } from './spec';

/** The parts of a StructureDefinition the model reads. */
export interface StructureDefinitionLike {
  resourceType: 'StructureDefinition';
  id?: string;
  url: string;
  name: string;
  type: string;
  kind: string;
  abstract?: boolean;
  derivation?: string;
  baseDefinition?: string;
  fhirVersion?: string;
  snapshot?: { element: ElementDefinitionLike[] };
  differential?: { element: ElementDefinitionLike[] };
}

export interface ElementDefinitionLike {
  id?: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  base?: { path: string; min: number; max: string };
  type?: { code: string; profile?: string[]; targetProfile?: string[]; extension?: { url: string; valueUrl?: string }[] }[];
  contentReference?: string;
  binding?: { strength: Strength; valueSet?: string };
  constraint?: { key: string; severity: string; human: string; expression?: string; source?: string }[];
  maxLength?: number;
  [fixedOrPattern: string]: unknown;
}

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';

/** FHIRPath system types used in the snapshots for the `value` of primitives and for ids/urls. */
const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

/** ele-1 (no empty elements) is checked natively on every element, not as an expression. */
const NATIVE_EVERYWHERE = new Set(['ele-1']);

function kindOf(sd: StructureDefinitionLike): ModelType['kind'] | undefined {
  if (sd.kind === 'resource') return 'resource';
  if (sd.kind === 'complex-type') return 'complex';
  if (sd.kind === 'primitive-type') return 'primitive';
  return undefined;
}

/** `max` as a number (-1 for `*`). */
export function maxOf(max: string | undefined): number {
  if (max === undefined || max === '*') return -1;
  const n = Number(max);
  return Number.isFinite(n) ? n : -1;
}

/** The last path segment of a canonical URL, which for core definitions is the type name. */
export function tail(url: string): string {
  const bar = url.indexOf('|');
  const clean = bar >= 0 ? url.slice(0, bar) : url;
  return clean.slice(clean.lastIndexOf('/') + 1);
}

function invariantsOf(el: ElementDefinitionLike, sdUrl: string, isRoot: boolean): ModelInvariant[] | undefined {
  const out: ModelInvariant[] = [];
  for (const c of el.constraint ?? []) {
    if (NATIVE_EVERYWHERE.has(c.key) || !c.expression) continue;
    if (c.severity !== 'error') continue;
    // A non-root element repeats its type's invariants (ext-1 on every `extension`): those are
    // evaluated once, on the type, so only the element's own constraints stay here.
    if (!isRoot && c.source && c.source !== sdUrl) continue;
    if (out.some((o) => o.key === c.key)) continue;
    out.push({ key: c.key, severity: 'error', human: c.human, expression: c.expression });
  }
  return out.length ? out : undefined;
}

function typeRefs(el: ElementDefinitionLike, hasChildren: boolean, knownTypes: ReadonlySet<string>): ModelTypeRef[] {
  if (el.contentReference) {
    return [{ code: el.contentReference.slice(el.contentReference.indexOf('#') + 1) }];
  }
  const refs: ModelTypeRef[] = [];
  for (const t of el.type ?? []) {
    let code = t.code;
    if (SYSTEM_TYPES[code]) {
      code = t.extension?.find((e) => e.url === FHIR_TYPE_EXT)?.valueUrl ?? SYSTEM_TYPES[code];
    }
    if ((code === 'BackboneElement' || code === 'Element') && hasChildren) code = el.path;
    // A core constraint on a datatype (SimpleQuantity, MoneyQuantity) is validated as that
    // constrained type, so its extra invariants and cardinalities apply.
    const profiled = t.profile?.find((p) => p.startsWith(CORE) && knownTypes.has(tail(p)));
    const ref: ModelTypeRef = { code };
    if (profiled) ref.as = tail(profiled);
    if ((t.code === 'Reference' || t.code === 'canonical') && t.targetProfile?.length) {
      const targets = t.targetProfile.map(tail);
      if (!targets.includes('Resource')) ref.targets = targets;
    }
    refs.push(ref);
  }
  return refs;
}

/**
 * Adds the model types of one snapshot to `types`: the definition itself under `key` and
 * each backbone element under its path.
 */
export function addSnapshotTypes(sd: StructureDefinitionLike, key: string, kind: ModelType['kind'], types: Record<string, ModelType>, knownTypes: ReadonlySet<string>): void {
  const elements = sd.snapshot?.element ?? [];
  if (!elements.length) return;
  const rootPath = elements[0].path;
  const root: ModelType = { kind, elements: [] };
  if (sd.abstract) root.abstract = true;
  if (rootPath !== key) root.constrains = rootPath;
  if (sd.baseDefinition) root.base = tail(sd.baseDefinition);
  const rootInv = invariantsOf(elements[0], sd.url, true);
  if (rootInv) root.invariants = rootInv;
  types[key] = root;
  // Element path → the ModelType that holds its children.
  const holders = new Map<string, ModelType>([[rootPath, root]]);

  for (let i = 1; i < elements.length; i++) {
    const el = elements[i];
    if (el.sliceName || el.id?.includes(':')) continue; // slices are profile detail, not structure
    const dot = el.path.lastIndexOf('.');
    const parent = holders.get(el.path.slice(0, dot));
    if (!parent) continue; // child of a skipped slice
    const next = elements[i + 1];
    const hasChildren = !!next && next.path.startsWith(el.path + '.');
    let name = el.path.slice(dot + 1);
    const choice = name.endsWith('[x]');
    if (choice) name = name.slice(0, -3);
    const me: ModelElement = {
      name,
      min: el.min ?? 0,
      max: maxOf(el.max),
      array: maxOf(el.base?.max ?? el.max) !== 1,
      types: typeRefs(el, hasChildren, knownTypes),
    };
    if (choice) me.choice = true;
    // R4 snapshots type Resource.id as string, but the specification defines a resource's
    // logical id as `id` ([A-Za-z0-9\-\.]{1,64}): fhirguard holds it to that.
    if (kind === 'resource' && parent === root && name === 'id') me.types = [{ code: 'id' }];
    // Required and extensible bindings (codes that cannot exist are errors under them), and
    // any binding to a value set whose codes have a known syntax (languages, MIME types,
    // currencies), which is checked whatever the strength.
    const bound = el.binding?.valueSet?.split('|')[0];
    const strength = el.binding?.strength;
    if (bound && strength && (strength === 'required' || strength === 'extensible' || FORMATS_BY_VALUE_SET.has(bound))) {
      me.binding = { strength, valueSet: bound };
    }
    const inv = invariantsOf(el, sd.url, false);
    if (inv) me.invariants = inv;
    if (el.maxLength) me.maxLength = el.maxLength;
    // Primitive types carry their value in `value`: fhirguard checks it natively.
    if (kind === 'primitive' && name === 'value' && parent === root) continue;
    parent.elements.push(me);
    if (hasChildren && !el.contentReference) {
      const backbone: ModelType = { kind: 'backbone', base: el.type?.[0]?.code ?? 'BackboneElement', elements: [] };
      types[el.path] = backbone;
      holders.set(el.path, backbone);
    }
  }
}

/** Builds the core model types from the R4 definition bundles. */
export function buildCoreTypes(sds: StructureDefinitionLike[]): Record<string, ModelType> {
  const core = sds.filter((sd) => sd.resourceType === 'StructureDefinition' && sd.url.startsWith(CORE) && sd.fhirVersion === '4.0.1' && kindOf(sd) !== undefined);
  const known = new Set(core.map((sd) => sd.id ?? sd.name));
  const types: Record<string, ModelType> = {};
  for (const sd of core) addSnapshotTypes(sd, sd.id ?? sd.name, kindOf(sd)!, types, known);
  return types;
}

/** Every value set URL that a required binding in `types` names. */
export function requiredValueSets(types: Record<string, ModelType>): string[] {
  const urls = new Set<string>();
  for (const t of Object.values(types)) {
    for (const el of t.elements) if (el.binding?.strength === 'required') urls.add(el.binding.valueSet);
  }
  return [...urls].sort();
}

export type { Model };
