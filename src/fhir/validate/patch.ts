// Patch documents. fhirguard never sees the resource a patch applies to (the worker has it),
// so it checks what it can see: a JSON Patch (RFC 6902) is an array of well-formed
// operations whose paths name elements that exist on the resource type and whose values
// are valid for those elements; a FHIRPath Patch is a valid Parameters resource whose
// `operation` parameters have the parts their type needs and a path that parses.

import * as fhirpath from 'fhirpath';
import type { Issue } from '../outcome';
import type { Slot } from './compiled';
import type { FhirValidator } from './validator';
import { describe } from './primitives';
import { isObject, Walker } from './walker';

const JSON_PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);
const POINTER_RE = /^(\/([^/~]|~[01])*)*$/;
/** Changing these would make the patched resource another resource. */
const IMMUTABLE = new Set(['/resourceType', '/id']);

function err(code: Issue['code'], diagnostics: string, expression: string): Issue {
  return { severity: 'error', code, diagnostics, expression: [expression] };
}

/** Issues of a JSON Patch document for a resource of `resourceType`; `at` prefixes locations. */
export function checkJsonPatch(v: FhirValidator, resourceType: string, doc: unknown, at = 'patch'): Issue[] {
  if (!Array.isArray(doc)) return [err('structure', `a JSON Patch is an array of operations, not ${describe(doc)}`, at)];
  if (doc.length === 0) return [err('required', 'a JSON Patch needs at least one operation', at)];
  const issues: Issue[] = [];
  doc.forEach((op, i) => {
    const loc = `${at}[${i}]`;
    if (!isObject(op)) {
      issues.push(err('structure', `operation ${i} must be an object`, loc));
      return;
    }
    const name = op.op;
    if (typeof name !== 'string' || !JSON_PATCH_OPS.has(name)) {
      issues.push(err('value', `operation ${i}: 'op' must be one of ${[...JSON_PATCH_OPS].join(', ')}`, `${loc}.op`));
      return;
    }
    for (const key of Object.keys(op)) {
      if (!['op', 'path', 'value', 'from'].includes(key)) issues.push(err('structure', `operation ${i}: unknown member '${key}'`, `${loc}.${key}`));
    }
    const pointers: [string, unknown][] = [['path', op.path]];
    if (name === 'move' || name === 'copy') pointers.push(['from', op.from]);
    for (const [field, pointer] of pointers) {
      if (typeof pointer !== 'string') {
        issues.push(err('required', `operation ${i} (${name}) needs a '${field}' JSON Pointer`, `${loc}.${field}`));
        continue;
      }
      if (!POINTER_RE.test(pointer) || pointer === '') {
        issues.push(err('value', `operation ${i}: '${pointer}' is not a JSON Pointer into the resource`, `${loc}.${field}`));
        continue;
      }
      if (IMMUTABLE.has(pointer) && (field === 'path' ? name !== 'test' : name === 'move')) {
        issues.push(err('forbidden', `operation ${i}: a patch must not change ${pointer.slice(1)}`, `${loc}.${field}`));
        continue;
      }
      const target = resolvePointer(v, resourceType, pointer);
      if (typeof target === 'string') {
        issues.push(err('structure', `operation ${i}: ${target}`, `${loc}.${field}`));
        continue;
      }
      if (field === 'path' && (name === 'add' || name === 'replace' || name === 'test')) {
        if (!Object.hasOwn(op, 'value')) {
          issues.push(err('required', `operation ${i} (${name}) needs a 'value'`, `${loc}.value`));
        } else if (target) {
          const w = new Walker(v.registry);
          w.valueAt(`${resourceType}${target.fhirpath}`, op.value, target.slot, target.whole);
          issues.push(...w.issues);
        }
      }
    }
  });
  return issues;
}

interface PointerTarget {
  slot: Slot;
  /** The pointer names the whole (repeating) element, not one item. */
  whole: boolean;
  fhirpath: string;
}

/**
 * Follows a JSON Pointer through the type tables: a description of the first step that
 * does not exist, the element it ends at, or undefined when it leads where the tables do
 * not go (inside an extension's value, a contained resource...).
 */
function resolvePointer(v: FhirValidator, resourceType: string, pointer: string): PointerTarget | string | undefined {
  const steps = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let type = v.registry.get(resourceType);
  let slot: Slot | undefined;
  let indexed = false;
  let path = '';
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i];
    if (slot && slot.el.array && !indexed) {
      if (s !== '-' && !/^(0|[1-9]\d*)$/.test(s)) return `'${s}' must be an index into ${slot.key}`;
      indexed = true;
      path += s === '-' ? '' : `[${s}]`;
      if (slot.isResource) return undefined;
      type = slot.primitive ? undefined : v.registry.get(slot.type);
      continue;
    }
    if (slot && (slot.primitive || slot.isResource)) return undefined;
    if (!type) return undefined;
    const next = type.slots.get(s);
    if (!next) return `'${s}' is not an element of ${type.path}`;
    slot = next;
    indexed = false;
    path += `.${next.step}`;
    if (next.companion) return undefined;
    if (!next.el.array) type = next.primitive || next.isResource ? undefined : v.registry.get(next.type);
  }
  return slot ? { slot, whole: slot.el.array && !indexed, fhirpath: path } : undefined;
}

/** Operation type → the parts it needs. The type is the client's `valueCode`: a Map, so `constructor` is no type. */
const FHIRPATH_PATCH_TYPES: ReadonlyMap<string, readonly string[]> = new Map([
  ['add', ['path', 'name', 'value']],
  ['insert', ['path', 'index', 'value']],
  ['delete', ['path']],
  ['replace', ['path', 'value']],
  ['move', ['path', 'source', 'destination']],
]);

/**
 * Issues of a FHIRPath Patch (a Parameters resource) for a resource of `resourceType`.
 * `validated`: the Parameters was already validated as a resource (a bundle entry).
 */
export function checkFhirPathPatch(v: FhirValidator, resourceType: string, doc: unknown, at = 'Parameters', validated = false): Issue[] {
  if (!isObject(doc) || doc.resourceType !== 'Parameters') {
    return [err('structure', `a FHIRPath Patch is a Parameters resource, not ${describe(doc)}`, at)];
  }
  const issues: Issue[] = validated ? [] : v.validateResource(doc).map((i) => ({ ...i, expression: i.expression?.map((e) => at + e.replace(/^Parameters/, '')) }));
  const params = Array.isArray(doc.parameter) ? doc.parameter : [];
  if (!params.length) issues.push(err('required', 'a FHIRPath Patch needs at least one operation', `${at}.parameter`));
  params.forEach((p, i) => {
    const loc = `${at}.parameter[${i}]`;
    if (!isObject(p)) return;
    if (p.name !== 'operation') {
      issues.push(err('value', `parameter ${i} of a FHIRPath Patch must be named 'operation'`, `${loc}.name`));
      return;
    }
    const parts = new Map<string, Record<string, unknown>>();
    for (const part of Array.isArray(p.part) ? p.part : []) if (isObject(part) && typeof part.name === 'string') parts.set(part.name, part);
    const type = parts.get('type')?.valueCode;
    const needed = typeof type === 'string' ? FHIRPATH_PATCH_TYPES.get(type) : undefined;
    if (!needed) {
      issues.push(err('value', `operation ${i}: part 'type' must be one of ${[...FHIRPATH_PATCH_TYPES.keys()].join(', ')}`, `${loc}.part`));
      return;
    }
    for (const name of needed) {
      const part = parts.get(name);
      const has = part && Object.keys(part).some((k) => k.startsWith('value') || k === 'part' || k === 'resource');
      if (!has) issues.push(err('required', `operation ${i} (${type}) needs the part '${name}'`, `${loc}.part`));
    }
    const path = parts.get('path')?.valueString;
    if (typeof path === 'string') {
      try {
        fhirpath.parse(path);
        const head = path.split(/[.([]/)[0];
        if (/^[A-Z]/.test(head) && head !== resourceType && resourceType) {
          issues.push(err('value', `operation ${i}: path '${path}' starts at ${head}, but the patched resource is a ${resourceType}`, `${loc}.part`));
        }
      } catch {
        issues.push(err('value', `operation ${i}: path '${path}' is not a FHIRPath expression`, `${loc}.part`));
      }
    } else if (parts.has('path')) {
      issues.push(err('value', `operation ${i}: the 'path' part takes a valueString`, `${loc}.part`));
    }
    for (const name of ['index', 'source', 'destination']) {
      const part = parts.get(name);
      if (part && part.valueInteger === undefined) issues.push(err('value', `operation ${i}: the '${name}' part takes a valueInteger`, `${loc}.part`));
    }
  });
  return issues;
}
