// A small declarative checker that walks the YAML syntax tree itself rather than the plain
// value it stands for: every node keeps its offset, so each problem is reported at the exact
// line and column of the field or item at fault (an unknown field at its key, a bad item at
// the item), which a JSON-Schema validator run on the parsed value cannot do without mapping
// its paths back. Specs are data (see schema.ts): adding a field is one entry in a table.

import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter } from 'yaml';
import type { PolicyIssue } from './policy-error';

export type Spec = StringSpec | IntegerSpec | BooleanSpec | ListSpec | ObjectSpec;

export interface StringSpec {
  type: 'string';
  /** Returns what is wrong with the value, or undefined when it is fine. */
  check?: (value: string) => string | undefined;
  /** How to describe an acceptable value in messages, e.g. `a tier name`. */
  expect?: string;
}
export interface IntegerSpec {
  type: 'integer';
  min: number;
  max: number;
}
export interface BooleanSpec {
  type: 'boolean';
  /** When set, the only value allowed (e.g. `deny: true`). */
  only?: boolean;
}
export interface ListSpec {
  type: 'list';
  items: Spec;
  minItems?: number;
  /** Report an item listed twice (at its second occurrence). */
  unique?: boolean;
}
export interface ObjectSpec {
  type: 'object';
  fields: Readonly<Record<string, Field>>;
}
export interface Field {
  spec: Spec;
  required?: boolean;
  /** One line for the README and for `unknown field` hints. */
  doc: string;
}

/** Field paths to source offsets, and the issues found; shared by the schema and semantic checks. */
export class SourcePositions {
  readonly issues: PolicyIssue[] = [];
  private readonly offsets = new Map<string, number>();

  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  mark(path: string, offset: number): void {
    if (!this.offsets.has(path)) this.offsets.set(path, offset);
  }

  /** Reports at `offset`, or where `path` (else its nearest marked parent) was found. */
  report(path: string, message: string, offset?: number): void {
    const at = offset ?? this.offsetOf(path);
    const { line, col } = this.lines.linePos(at);
    this.issues.push({ file: this.file, line, col, path: path || '(document)', message });
  }

  private offsetOf(path: string): number {
    for (let p = path; ; p = parentPath(p)) {
      const o = this.offsets.get(p);
      if (o !== undefined) return o;
      if (p === '') return 0;
    }
  }
}

function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
  return cut < 0 ? '' : path.slice(0, cut);
}

/** Deep alias chains can expand exponentially; a policy file never needs many. */
const MAX_ALIASES = 100;

interface Walk {
  doc: Document;
  at: SourcePositions;
  aliases: number;
}

/** Checks the document's root against `spec`; returns the plain value when no issue was found. */
export function checkDocument(doc: Document, spec: Spec, at: SourcePositions): unknown {
  const walk: Walk = { doc, at, aliases: 0 };
  if (doc.contents === null) {
    at.report('', `the file is empty; expected ${describe(spec)}`, 0);
    return undefined;
  }
  const before = at.issues.length;
  const value = check(doc.contents, spec, '', walk);
  return at.issues.length === before ? value : undefined;
}

function offsetOf(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function check(raw: unknown, spec: Spec, path: string, w: Walk): unknown {
  let node = raw;
  if (isAlias(node)) {
    if (++w.aliases > MAX_ALIASES) {
      w.at.report(path, `more than ${MAX_ALIASES} aliases; write the values out`, offsetOf(node));
      return undefined;
    }
    node = node.resolve(w.doc);
  }
  const offset = offsetOf(node) ?? offsetOf(raw);
  if (offset !== undefined) w.at.mark(path, offset);
  const wrong = (found: string): undefined => {
    w.at.report(path, `expected ${describe(spec)}, found ${found}`, offset);
    return undefined;
  };

  if (isScalar(node) && node.value === null) return wrong('an empty value');
  switch (spec.type) {
    case 'string': {
      if (!isScalar(node) || typeof node.value !== 'string') return wrong(shown(node));
      const problem = spec.check?.(node.value);
      if (problem) {
        w.at.report(path, problem, offset);
        return undefined;
      }
      return node.value;
    }
    case 'integer': {
      if (!isScalar(node) || typeof node.value !== 'number' || !Number.isInteger(node.value)) return wrong(shown(node));
      if (node.value < spec.min || node.value > spec.max) return wrong(String(node.value));
      return node.value;
    }
    case 'boolean': {
      if (!isScalar(node) || typeof node.value !== 'boolean') return wrong(shown(node));
      if (spec.only !== undefined && node.value !== spec.only) return wrong(String(node.value));
      return node.value;
    }
    case 'list': {
      if (!isSeq(node)) return wrong(shown(node));
      if (node.items.length < (spec.minItems ?? 0)) {
        w.at.report(path, `expected at least ${spec.minItems} item${spec.minItems === 1 ? '' : 's'}, found none`, offset);
        return undefined;
      }
      const seen = new Set<unknown>();
      return node.items.map((item, i) => {
        const itemPath = `${path}[${i}]`;
        const value = check(item, spec.items, itemPath, w);
        if (spec.unique && value !== undefined) {
          if (seen.has(value)) w.at.report(itemPath, `${JSON.stringify(value)} is listed twice`, offsetOf(item));
          seen.add(value);
        }
        return value;
      });
    }
    case 'object': {
      if (!isMap(node)) return wrong(shown(node));
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined;
        if (typeof key !== 'string') {
          w.at.report(path, 'field names must be plain strings', offsetOf(pair.key) ?? offset);
          continue;
        }
        const field = Object.prototype.hasOwnProperty.call(spec.fields, key) ? spec.fields[key] : undefined;
        if (!field) {
          w.at.report(join(path, key), `unknown field; expected one of: ${Object.keys(spec.fields).join(', ')}`, offsetOf(pair.key));
          continue;
        }
        // `key:` with nothing after it has no value node: report at the key.
        if (pair.value === null || pair.value === undefined) {
          w.at.report(join(path, key), `expected ${describe(field.spec)}, found an empty value`, offsetOf(pair.key));
          continue;
        }
        out[key] = check(pair.value, field.spec, join(path, key), w);
      }
      for (const [name, field] of Object.entries(spec.fields)) {
        if (field.required && !node.items.some((p) => isScalar(p.key) && p.key.value === name)) {
          w.at.report(join(path, name), `missing required field (${field.doc})`, offset);
        }
      }
      return out;
    }
  }
}

function shown(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return typeof node.value === 'string' ? `the string ${JSON.stringify(node.value)}` : String(node.value);
  return 'something else';
}

/** Plain-words description of what a spec accepts, for messages and documentation. */
export function describe(spec: Spec): string {
  switch (spec.type) {
    case 'string':
      return spec.expect ?? 'a string';
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'boolean':
      return spec.only === undefined ? 'true or false' : String(spec.only);
    case 'list':
      return `a list (each item ${describe(spec.items)})`;
    case 'object':
      return `a mapping with the fields ${Object.keys(spec.fields).join(', ')}`;
  }
}
