// Request bodies as JSON, refused unless they are something a FHIR worker can safely take:
// valid UTF-8 (a fatal decoder, so no byte is silently replaced and read differently
// upstream), JSON, the expected top level (an object; an array for JSON Patch), no deeper
// than a limit, and no `__proto__` / `constructor` / `prototype` keys, which turn into
// prototype pollution in any JavaScript code that later merges or copies the object.
//
// The body is forwarded as sent, so it must also mean to every JSON reader what it meant to
// fhirguard. Refused, because readers disagree on them:
//   - a key repeated within one object (JSON.parse keeps the last, many servers the first,
//     some refuse): fhirguard would validate one resource and the server store another;
//   - a number a double does not hold exactly (more digits than a double keeps, or beyond
//     its range): fhirguard validates the double, a BigDecimal reader stores the literal;
//   - a \u escape that leaves a lone surrogate (not Unicode: readers refuse it, replace it
//     with U+FFFD or keep it) or makes a NUL (C strings end there; PostgreSQL refuses it).
// Accepted, because every reader agrees: a leading UTF-8 byte order mark (stripped by the
// decoder; readers that do not skip it refuse the body, none reads it differently) and -0
// (zero to every reader; FHIR's integer and decimal grammars allow it).
//
// JSON.parse itself copes with any nesting depth, so the depth and key checks run after it
// in one iterative walk (no recursion to overflow), which also counts the parsed members;
// body-text.ts then counts the members the text spells and checks long number literals in
// one pass that skips strings. A repeated key shows as a difference between the two counts,
// and only then is the text walked again to name the key. bench/body.ts measures the cost
// against a bare decode + JSON.parse.

import { findDuplicateKey, scanJsonText, scanNumbersEverywhere } from './body-text';
import { refuse, type FhirError } from './outcome';
import type { RefusalReason } from './refusal-reasons';

export interface BodyLimits {
  /** Deepest nesting of objects and arrays accepted; the top level is depth 1. */
  maxDepth: number;
}

/** Keys that reach an object's prototype machinery when copied with plain assignment. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const decoder = new TextDecoder('utf-8', { fatal: true });

function bad(reason: RefusalReason, diagnostics: string, code: 'structure' | 'invalid' | 'security' = 'structure'): FhirError {
  return refuse(400, reason, code, diagnostics);
}

function decode(buf: Buffer): string {
  try {
    return decoder.decode(buf);
  } catch {
    throw bad('bad-encoding', 'the body is not valid UTF-8');
  }
}

function parse(text: string): unknown {
  if (text.trim() === '') throw bad('bad-json', 'the body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw bad('bad-json', `the body is not valid JSON: ${message.length > 200 ? `${message.slice(0, 200)}...` : message}`);
  }
}

/** What walk counts: object members and numbers, to compare with what the text spells. */
interface Counts {
  members: number;
  numbers: number;
}

/** One pass over every object and array below `root`: depth and forbidden keys, and counts. */
function walk(root: object, limits: BodyLimits): Counts {
  let members = 0;
  let numbers = 0;
  const nodes: object[] = [root];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop() as object;
    const depth = depths.pop() as number;
    if (depth > limits.maxDepth) throw bad('too-deep', `the body nests deeper than ${limits.maxDepth} levels`);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const v: unknown = node[i];
        if (typeof v === 'object' && v !== null) {
          nodes.push(v);
          depths.push(depth + 1);
        } else if (typeof v === 'number') {
          numbers++;
        }
      }
    } else {
      const obj = node as Record<string, unknown>;
      // JSON.parse creates plain objects whose prototype has no enumerable keys: for-in sees own keys only.
      for (const key in obj) {
        members++;
        if (FORBIDDEN_KEYS.has(key)) throw bad('forbidden-key', `the key '${key}' is not allowed anywhere in a body`, 'security');
        const v = obj[key];
        if (typeof v === 'object' && v !== null) {
          nodes.push(v);
          depths.push(depth + 1);
        } else if (typeof v === 'number') {
          numbers++;
        }
      }
    }
  }
  return { members, numbers };
}

/** `\uD800`-`\uDFFF` or `\u0000` spelled somewhere: the parsed strings need a closer look. */
const RISKY_ESCAPE_RE = /\\u(?:[dD][89a-fA-F]|0000)/;

/** The first string (key or value) below `root` that is not well-formed Unicode or holds a NUL. */
function badString(root: unknown): string | undefined {
  const nodes: unknown[] = [root];
  while (nodes.length > 0) {
    const node = nodes.pop();
    if (typeof node === 'string') {
      if (!(node as unknown as { isWellFormed(): boolean }).isWellFormed() || node.includes('\0')) return node;
    } else if (Array.isArray(node)) {
      for (const v of node) nodes.push(v);
    } else if (typeof node === 'object' && node !== null) {
      for (const key in node as Record<string, unknown>) nodes.push(key, (node as Record<string, unknown>)[key]);
    }
  }
  return undefined;
}

/** The body's text must mean to every JSON reader what it means to JSON.parse (see the header). */
function checkFidelity(text: string, value: object, counts: Counts): void {
  const scan = scanJsonText(text);
  // Numbers the scan did not reach (inside arrays, or after a repeated key's value) need
  // the slower scan that reads between every pair of strings.
  const unfaithful = scan.unfaithfulNumber ?? (scan.numbers < counts.numbers || scan.members !== counts.members ? scanNumbersEverywhere(text) : undefined);
  if (unfaithful !== undefined) {
    const shown = unfaithful.length > 40 ? `${unfaithful.slice(0, 40)}...` : unfaithful;
    throw bad(
      'imprecise-number',
      `the number ${shown} cannot be held exactly by a double, so JSON readers would disagree on its value; send it as a double prints it (its shortest form, within ±1.7e308)`,
      'invalid',
    );
  }
  if (scan.members !== counts.members) {
    const dup = findDuplicateKey(text);
    const where = dup ? dup.path : '(unknown)';
    const key = dup ? dup.key : '';
    throw refuse(400, 'duplicate-key', 'structure', `the key '${key.slice(0, 80)}' appears more than once in one object, at ${where}; JSON readers disagree on which one counts`, [where]);
  }
  if (text.includes('\\u') && RISKY_ESCAPE_RE.test(text)) {
    const s = badString(value);
    if (s !== undefined) throw bad('bad-string', 'a string escapes a lone surrogate (\\uD800-\\uDFFF not in a pair) or a NUL (\\u0000), which JSON readers handle differently', 'invalid');
  }
}

function parseChecked(buf: Buffer, limits: BodyLimits, top: 'object' | 'array'): unknown {
  const text = decode(buf);
  const value = parse(text);
  const isArray = Array.isArray(value);
  if (typeof value !== 'object' || value === null || isArray !== (top === 'array')) {
    const got = value === null ? 'null' : isArray ? 'an array' : typeof value;
    throw bad(top === 'array' ? 'not-array' : 'not-object', `the body must be a JSON ${top === 'array' ? 'array (JSON Patch)' : 'object (a FHIR resource)'}, not ${got}`);
  }
  checkFidelity(text, value, walk(value, limits));
  return value;
}

/** Parses a resource, Bundle or Parameters body. Throws FhirError 400 (see the file header). */
export function parseJsonBody(buf: Buffer, limits: BodyLimits): unknown {
  return parseChecked(buf, limits, 'object');
}

/** Parses a JSON Patch body (application/json-patch+json): a top-level array, same checks. */
export function parseJsonPatchBody(buf: Buffer, limits: BodyLimits): unknown[] {
  return parseChecked(buf, limits, 'array') as unknown[];
}
