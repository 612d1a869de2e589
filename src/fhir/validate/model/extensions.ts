// Extension definitions (StructureDefinitions of type Extension) reduced to the model's
// ModelExtension: where an extension may be used, how often, whether it is a modifier, the
// types and required binding of its value, and its nested extensions. Used by the generator
// for the R4 extension registry and at load time for extensions in operators' packages.

import { maxOf, type ElementDefinitionLike, type StructureDefinitionLike } from './build';
import type { ModelExtension, ModelExtensionValue } from './spec';

export interface ExtensionDefinitionLike extends StructureDefinitionLike {
  context?: { type: string; expression: string }[];
}

const SD = 'http://hl7.org/fhir/StructureDefinition/';

/**
 * Contexts the R4 publication's own resources use beyond what the definitions say, widened so
 * that the specification's own resources stay valid (R4B moved fhir-type's context to
 * ElementDefinition.type): fhir-type and regex on ElementDefinition.type, normative-version on
 * every conformance resource and on element definitions, valueset-concept-comments on the
 * concepts of code systems too.
 */
const CONTEXT_ERRATA: Record<string, string[]> = {
  [SD + 'structuredefinition-fhir-type']: ['ElementDefinition.type'],
  [SD + 'regex']: ['ElementDefinition.type'],
  [SD + 'structuredefinition-normative-version']: ['CodeSystem', 'ValueSet', 'OperationDefinition', 'SearchParameter', 'CapabilityStatement', 'ElementDefinition'],
  [SD + 'valueset-concept-comments']: ['CodeSystem.concept'],
};

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

/** Whether `sd` defines an extension (rather than a profile of another type). */
export function isExtensionDefinition(sd: { resourceType: string; type?: unknown; url?: unknown; snapshot?: unknown }): boolean {
  return sd.resourceType === 'StructureDefinition' && sd.type === 'Extension' && typeof sd.url === 'string' && !!sd.snapshot;
}

function valueOf(el: ElementDefinitionLike | undefined): ModelExtensionValue | undefined {
  if (!el || el.max === '0' || !el.type?.length) return undefined;
  const value: ModelExtensionValue = { types: el.type.map((t) => t.code), min: el.min ?? 0 };
  if (el.binding?.strength === 'required' && el.binding.valueSet) value.valueSet = stripVersion(el.binding.valueSet);
  return value;
}

/** The model of one extension definition, or undefined when it has no snapshot. */
export function buildExtension(sd: ExtensionDefinitionLike): ModelExtension | undefined {
  const els = sd.snapshot?.element ?? [];
  if (!els.length) return undefined;
  const byId = new Map<string, ElementDefinitionLike>();
  for (const el of els) if (el.id) byId.set(el.id, el);
  const root = els[0];
  const contexts: string[] = [];
  for (const c of sd.context ?? []) {
    if (c.type === 'element') contexts.push(c.expression);
    else if (c.type === 'extension') contexts.push('extension:' + stripVersion(c.expression));
    else contexts.push('*');
  }
  contexts.push(...(CONTEXT_ERRATA[stripVersion(sd.url)] ?? []));
  const ext: ModelExtension = { contexts: contexts.length ? contexts : ['*'], max: maxOf(root.max) };
  if (root.isModifier === true) ext.modifier = true;
  const value = valueOf(byId.get('Extension.value[x]'));
  if (value) ext.value = value;
  const nested = byId.get('Extension.extension');
  if (nested && nested.max !== '0') {
    const parts: NonNullable<ModelExtension['parts']> = {};
    for (const el of els) {
      if (el.path !== 'Extension.extension' || !el.sliceName || el.id !== `Extension.extension:${el.sliceName}`) continue;
      const prefix = `Extension.extension:${el.sliceName}`;
      const url = byId.get(prefix + '.url')?.fixedUri;
      const part: NonNullable<ModelExtension['parts']>[string] = { min: el.min ?? 0, max: maxOf(el.max) };
      const partValue = valueOf(byId.get(prefix + '.value[x]'));
      if (partValue) part.value = partValue;
      parts[typeof url === 'string' ? url : el.sliceName] = part;
    }
    ext.parts = parts;
    if ((nested.slicing as { rules?: string } | undefined)?.rules === 'closed') ext.closed = true;
  }
  return ext;
}

/** Every extension definition among `sds`, by canonical URL without version. */
export function buildExtensions(sds: ExtensionDefinitionLike[]): Record<string, ModelExtension> {
  const out: Record<string, ModelExtension> = {};
  for (const sd of sds) {
    if (!isExtensionDefinition(sd)) continue;
    const ext = buildExtension(sd);
    if (ext) out[stripVersion(sd.url)] = ext;
  }
  return out;
}

/** The value sets the extensions' required bindings name. */
export function extensionValueSets(extensions: Record<string, ModelExtension>): string[] {
  const urls = new Set<string>();
  for (const ext of Object.values(extensions)) {
    if (ext.value?.valueSet) urls.add(ext.value.valueSet);
    for (const part of Object.values(ext.parts ?? {})) if (part.value?.valueSet) urls.add(part.value.valueSet);
  }
  return [...urls];
}
