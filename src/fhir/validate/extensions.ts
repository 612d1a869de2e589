// Extensions where they are used, against their definitions (the R4 extension registry, and
// extension definitions in operators' packages): the element or type they are used on must be
// one of the definition's contexts, modifier extensions go in `modifierExtension` and others
// in `extension`, the value has an allowed type (and a code of its required binding), a
// complex extension has its nested extensions in the numbers it allows and no value, and an
// extension appears no more often than its definition says. An unknown extension is a
// warning (the specification lets anyone define extensions); an unknown modifier extension
// is an error, since a receiver that does not understand one must not process the resource,
// except on the documentation domains (example.org, ...) the specification's own examples use.

import type { IssueCode, IssueSeverity } from '../outcome';
import type { CompiledExtension, CompiledExtensionValue, TypeRegistry } from './compiled';

type Json = Record<string, unknown>;

/** The element an `extension` array belongs to: its definition path and type. */
export interface Holder {
  path: string;
  type: string;
}

/** Where issues go: the walker, located at the `extension` array. */
export interface IssueSink {
  issue(severity: IssueSeverity, code: IssueCode, diagnostics: string, extra?: string): void;
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const HOST_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/:?#]+)/;
/** RFC 2606 / RFC 6761: names reserved for documentation and testing. */
const DOC_HOSTS = new Set(['example.org', 'example.com', 'example.net']);
const DOC_TLDS = new Set(['example', 'test', 'invalid', 'localhost']);
/** A context expression fhirguard can match: a type name or a dotted element path. */
const PLAIN_CONTEXT_RE = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*(\[x\])?)*$/;

function isDocumentationUrl(url: string): boolean {
  const host = HOST_RE.exec(url)?.[1].toLowerCase();
  if (!host) return false;
  for (const h of DOC_HOSTS) if (host === h || host.endsWith('.' + h)) return true;
  return DOC_TLDS.has(host.slice(host.lastIndexOf('.') + 1));
}

/** URLs are named whole in diagnostics (a clipped one is ambiguous), up to a bound. */
function clipUrl(url: string): string {
  return url.length > 200 ? url.slice(0, 197) + '...' : url;
}

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

/** The key of an extension's value (`valueDateTime`, or `_valueString` alone for a primitive with only extensions), if it has one. */
function valueKey(ext: Json): string | undefined {
  for (const k in ext) {
    const name = k.charCodeAt(0) === 95 /* _ */ ? k.slice(1) : k;
    if (name.length > 5 && name.startsWith('value')) {
      const c = name.charCodeAt(5);
      if (c >= 65 && c <= 90) return name;
    }
  }
  return undefined;
}

/**
 * Checks the extensions of one `extension` or `modifierExtension` array. `parentUrl` is the
 * url of the extension that holds the array, for nested extensions.
 */
export function checkExtensionList(list: readonly unknown[], modifier: boolean, holder: Holder, parentUrl: string | undefined, reg: TypeRegistry, sink: IssueSink): void {
  const nested = parentUrl !== undefined;
  const parent = nested ? reg.extension(stripVersion(parentUrl)) : null;
  // A known complex extension checks its own parts (checkParts, from its holder).
  if (parent?.parts && !modifier) return;
  let counts: Map<CompiledExtension, number> | undefined;
  for (let i = 0; i < list.length; i++) {
    const ext = list[i];
    if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) continue;
    const url = (ext as Json).url;
    if (typeof url !== 'string') continue; // Extension.url is required: reported as such
    const at = `[${i}]`;
    if (!SCHEME_RE.test(url)) {
      // Relative names are for the nested extensions of a complex extension.
      if (!nested) sink.issue('error', 'value', `the url '${clipUrl(url)}' of an extension must be absolute (only nested extensions use names)`, at);
      continue;
    }
    const def = reg.extension(stripVersion(url));
    if (!def) {
      if (modifier && !isDocumentationUrl(url)) {
        sink.issue('error', 'not-supported', `unknown modifier extension '${clipUrl(url)}': it may change the meaning of the element, so the resource cannot be processed safely`, at);
      } else {
        sink.issue('warning', 'not-supported', `unknown extension '${clipUrl(url)}': not checked against a definition`, at);
      }
      continue;
    }
    checkUse(ext as Json, def, modifier, holder, parentUrl, reg, sink, at);
    if (def.max >= 0) (counts ??= new Map()).set(def, (counts.get(def) ?? 0) + 1);
  }
  if (counts) {
    for (const [def, n] of counts) {
      if (n > def.max) sink.issue('error', 'structure', `the extension '${clipUrl(def.url)}' may appear at most ${def.max} time(s) here, found ${n}`);
    }
  }
}

function checkUse(ext: Json, def: CompiledExtension, modifier: boolean, holder: Holder, parentUrl: string | undefined, reg: TypeRegistry, sink: IssueSink, at: string): void {
  const url = clipUrl(def.url);
  if (def.modifier !== modifier) {
    sink.issue('error', 'structure', def.modifier ? `'${url}' is a modifier extension: it belongs in modifierExtension` : `'${url}' is not a modifier extension: it belongs in extension`, at);
  }
  if (!inContext(def, holder, parentUrl, reg)) {
    sink.issue('error', 'structure', `the extension '${url}' is not allowed on ${holder.path || holder.type} (its contexts: ${def.contexts.join(', ')})`, at);
  }
  checkValue(ext, def.value, `the extension '${url}'`, reg, sink, at);
  const nested = ext.extension;
  if (!def.parts) {
    if (nested !== undefined) sink.issue('error', 'structure', `the extension '${url}' takes a value, not nested extensions`, at);
    return;
  }
  checkParts(Array.isArray(nested) ? nested : [], def, reg, sink, at);
}

/** The value of an extension (or of one of its parts) against the definition's value[x]. */
function checkValue(ext: Json, value: CompiledExtensionValue | undefined, what: string, reg: TypeRegistry, sink: IssueSink, at: string): void {
  const key = valueKey(ext);
  if (!value) {
    if (key) sink.issue('error', 'structure', `${what} takes nested extensions, not a value`, at);
    return;
  }
  if (!key) {
    if (value.min > 0) sink.issue('error', 'required', `${what} needs a value (${value.types.join(', ')})`, at);
    return;
  }
  const type = reg.get('Extension')?.slots.get(key)?.type;
  if (!type) return; // not an Extension element: the walker reports it
  if (!value.types.some((t) => reg.isA(type, t))) {
    sink.issue('error', 'structure', `${what} takes a value of type ${value.types.join(', ')}, not ${type}`, at);
    return;
  }
  if (value.valueSet && ext[key] !== undefined && !inValueSet(ext[key], type, value.valueSet)) {
    sink.issue('error', 'code-invalid', `the value of ${what} is not in the required value set ${value.valueSet.url}`, at);
  }
}

function inValueSet(v: unknown, type: string, vs: NonNullable<CompiledExtensionValue['valueSet']>): boolean {
  if (typeof v === 'string') return vs.codes.has(v);
  if (typeof v !== 'object' || v === null) return true;
  const coding = (c: unknown): boolean => {
    const o = c as Json;
    return typeof o?.code === 'string' && typeof o.system === 'string' && !!vs.bySystem.get(o.system)?.has(o.code);
  };
  if (type === 'Coding') return coding(v);
  if (type === 'CodeableConcept') {
    const codings = (v as Json).coding;
    return !Array.isArray(codings) || codings.length === 0 || codings.some(coding);
  }
  return true;
}

/** The nested extensions of a complex extension against its parts. */
function checkParts(nested: readonly unknown[], def: CompiledExtension, reg: TypeRegistry, sink: IssueSink, at: string): void {
  const parts = def.parts!;
  const counts = new Map<string, number>();
  for (let i = 0; i < nested.length; i++) {
    const ext = nested[i] as Json;
    if (typeof ext !== 'object' || ext === null || typeof ext.url !== 'string') continue;
    const part = parts.get(ext.url);
    const where = `${at}.extension[${i}]`;
    if (!part) {
      if (def.closed) sink.issue('error', 'structure', `the extension '${clipUrl(def.url)}' has no nested extension '${clipUrl(ext.url)}'`, where);
      continue;
    }
    counts.set(ext.url, (counts.get(ext.url) ?? 0) + 1);
    checkValue(ext, part.value, `'${clipUrl(ext.url)}' of '${clipUrl(def.url)}'`, reg, sink, where);
  }
  for (const [url, part] of parts) {
    const n = counts.get(url) ?? 0;
    if (n < part.min) sink.issue('error', 'required', `the extension '${clipUrl(def.url)}' needs its nested extension '${clipUrl(url)}' at least ${part.min} time(s), found ${n}`, at);
    else if (part.max >= 0 && n > part.max) {
      sink.issue('error', 'structure', `the extension '${clipUrl(def.url)}' allows its nested extension '${clipUrl(url)}' at most ${part.max} time(s), found ${n}`, at);
    }
  }
}

/** Whether the definition lets the extension be used on `holder`. */
function inContext(def: CompiledExtension, holder: Holder, parentUrl: string | undefined, reg: TypeRegistry): boolean {
  for (const ctx of def.contexts) {
    if (ctx === '*' || ctx === 'Element') return true;
    if (ctx.startsWith('extension:')) {
      if (parentUrl !== undefined && ctx.slice(10) === stripVersion(parentUrl)) return true;
      continue;
    }
    // A context fhirguard cannot match (a FHIRPath expression) is not judged.
    if (!PLAIN_CONTEXT_RE.test(ctx)) return true;
    const path = ctx.endsWith('[x]') ? ctx.slice(0, -3) : ctx;
    if (path === holder.path || path === holder.type) return true;
    if (!path.includes('.') && holder.type && reg.isA(holder.type, path)) return true;
  }
  return false;
}
