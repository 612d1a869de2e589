// The FHIRPath invariants of the StructureDefinitions (constraint.expression, severity
// error), parsed once, evaluated on each element they are declared on. The `fhirpath`
// package with its R4 model is the reference; fastpath.ts compiles the subset the R4
// invariants use into closures that agree with it (tested) at a fraction of the cost, and
// hands anything else back to it. Three things keep this cheap: an invariant is only
// evaluated where its element occurs (the walker calls it per node); one that reads only
// named children is skipped when none of them is present, if it holds on an empty node
// (e.g. `dataAbsentReason.empty() or value.empty()` on an Observation with neither); and
// fhirpath.js compiles an expression only the first time the fast path hands one back.

import * as fhirpath from 'fhirpath';
import * as r4 from 'fhirpath/fhir-context/r4';
import { FALLBACK, FastPathCompiler } from './fastpath';
import type { ModelInvariant } from './model/spec';

/**
 * Invariants fhirguard does not evaluate as FHIRPath, and why: each is checked natively
 * instead (more precisely located, or far cheaper), or would reject valid resources.
 */
export const EXCLUDED_INVARIANTS: Readonly<Record<string, string>> = {
  // ele-1 (no empty elements) is checked natively on every element by the walker.
  'ele-1': 'checked natively on every element',
  // ext-1 (an extension has either extensions or a value) is checked natively on Extension.
  'ext-1': 'checked natively on every extension',
  // txt-1 and txt-2 are expressed with htmlChecks(), a function the fhirpath package lacks;
  // narrative.ts checks both rules on the XHTML itself (tests: fixtures/validate/narrative.json).
  'txt-1': 'checked natively in narrative.ts (allowed elements and attributes, no scripts, events, forms or external loads)',
  'txt-2': 'checked natively in narrative.ts (the narrative has visible content)',
  // dom-3 (contained resources are referenced) scans every descendant with fhirpath; the
  // walker collects local references as it goes and checks them natively (references.ts).
  'dom-3': 'checked natively from the references collected during the walk',
  // ref-1 (a `#id` reference names a contained resource) is checked with dom-3, natively:
  // its expression also rejects `#`, the valid reference from a contained resource to its
  // container.
  'ref-1': "checked natively; the expression wrongly rejects '#' (a reference to the container)",
  // bdl-7 (fullUrls unique) builds fullUrl&versionId strings for every entry and compares
  // them pairwise; bundle-rules.ts checks the same rule with one Set.
  'bdl-7': 'checked natively in bundle-rules.ts (one pass instead of pairwise comparison)',
  // bdl-3 and bdl-4 (request/response present exactly in the bundle types that need them)
  // are checked per entry in bundle-rules.ts, so the issue names the entry, not the whole Bundle.
  'bdl-3': 'checked natively in bundle-rules.ts, located at the entry',
  'bdl-4': 'checked natively in bundle-rules.ts, located at the entry',
};

/**
 * Invariants whose R4 expression is wrong as written, with the corrected expression fhirguard
 * evaluates instead, and why.
 */
export const CORRECTED_INVARIANTS: Readonly<Record<string, { expression: string; reason: string }>> = {
  // `Boolean` is FHIRPath's System.Boolean; an answerBoolean is a FHIR.boolean, so the R4
  // expression rejects every enableWhen with operator 'exists' (the spec's own examples).
  'que-7': {
    expression: "operator = 'exists' implies (answer is FHIR.boolean)",
    reason: 'answer is a FHIR.boolean, never a System.Boolean',
  },
};

/** External constants that are plain strings: reading them does not look outside the node. */
const STRING_CONSTANTS = new Set(['ucum', 'sct', 'loinc']);
/** Functions that read more of the resource than the named children of the node. */
const NON_LOCAL_FUNCTIONS = new Set(['descendants', 'children', 'resolve', 'memberOf', 'conformsTo', 'htmlChecks', 'hasValue', 'getValue']);

export interface Env {
  resource: unknown;
  rootResource: unknown;
}

export interface CompiledInvariant {
  key: string;
  human: string;
  expression: string;
  /**
   * Element names the expression reads from its node, when it reads nothing else and holds
   * on a node where none of them is present: the walker then skips it on such nodes.
   */
  skipUnless?: ReadonlySet<string>;
  /** True, false, or undefined when it cannot be evaluated on this node. `type` is the node's type. */
  evaluate(node: unknown, type: string, env: Env): boolean | undefined;
  /** The fast closure alone (undefined: outside the subset); FALLBACK is thrown for cases it leaves to fhirpath.js. */
  fast?: (node: unknown, type: string, env: Env) => boolean | undefined;
  /** fhirpath.js alone: the reference the fast closure is tested against. */
  reference(node: unknown, env: Env): boolean | undefined;
}

const OPTIONS = { traceFn: () => undefined } as unknown as Record<string, unknown>;

type Compiled = (resource: unknown, env?: Record<string, unknown>) => unknown[];

/** An invariant's result: an empty collection is a pass (FHIR), anything but a single true a failure. */
function verdict(result: unknown[]): boolean {
  if (result.length === 0) return true;
  return result.length === 1 && result[0] === true;
}

/**
 * Compiles one invariant declared at a definition path (e.g. `Patient.contact`); null if it
 * is excluded or fhirpath.js cannot compile it either.
 */
export function compileInvariant(
  inv: ModelInvariant,
  base: string,
  emptyNode: unknown,
  fastCompiler: FastPathCompiler,
  nodeType: string,
  cache: Map<string, CompiledInvariant | null>,
): CompiledInvariant | null {
  if (EXCLUDED_INVARIANTS[inv.key]) return null;
  const expression = CORRECTED_INVARIANTS[inv.key]?.expression ?? inv.expression;
  const cacheKey = `${base}\u0000${expression}`;
  if (cache.has(cacheKey)) return cache.get(cacheKey)!;
  const ast = parse(expression);
  if (!ast) {
    cache.set(cacheKey, null);
    return null;
  }
  // fhirpath.js compiles slowly (milliseconds per expression): only when first needed.
  let slow: Compiled | null | undefined;
  const reference = (node: unknown, env: Env): boolean | undefined => {
    if (slow === undefined) {
      try {
        slow = fhirpath.compile({ base, expression } as never, r4 as never, OPTIONS as never) as unknown as Compiled;
      } catch {
        slow = null;
      }
    }
    if (!slow) return undefined;
    try {
      return verdict(slow(node, env as unknown as Record<string, unknown>));
    } catch {
      return undefined;
    }
  };
  const closure = fastCompiler.compile(ast);
  const fast = closure
    ? (node: unknown, type: string, env: Env): boolean | undefined => {
        const r = closure(node, type, env);
        if (r.length === 0) return true;
        if (r.length === 1 && typeof r[0].v === 'boolean') return r[0].v;
        throw FALLBACK;
      }
    : undefined;
  const evaluate = fast
    ? (node: unknown, type: string, env: Env): boolean | undefined => {
        try {
          return fast(node, type, env);
        } catch (e) {
          if (e === FALLBACK) return reference(node, env);
          throw e;
        }
      }
    : (node: unknown, _type: string, env: Env) => reference(node, env);
  const compiled: CompiledInvariant = { key: inv.key, human: inv.human, expression, evaluate, fast, reference };
  const reads = localReads(ast);
  if (reads && evaluate(emptyNode, nodeType, { resource: emptyNode, rootResource: emptyNode }) === true) {
    compiled.skipUnless = new Set(reads);
  }
  cache.set(cacheKey, compiled);
  return compiled;
}

const parsed = new Map<string, AstNode | null>();

/** fhirpath.js's parse tree of an expression (parsing costs about a millisecond: once each). */
function parse(expression: string): AstNode | null {
  let ast = parsed.get(expression);
  if (ast === undefined) {
    try {
      ast = fhirpath.parse(expression) as AstNode;
    } catch {
      ast = null;
    }
    parsed.set(expression, ast);
  }
  return ast;
}

export interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

/** Functions whose argument is evaluated once per input item, with `$this` bound to the item. */
const LAMBDAS = new Set(['where', 'select', 'all', 'exists', 'repeat', 'any']);

/**
 * The element names an expression can read from its context node, or undefined when it
 * may read anything else (other resources, descendants, external variables). Only the
 * first step of each path counts: `contained.meta.versionId` reads nothing from the node
 * but `contained`, so a node without `contained` gives the same result as an empty node.
 */
export function localReads(ast: AstNode): string[] | undefined {
  const names = new Set<string>();
  let local = true;
  const visit = (node: AstNode, parent: AstNode | undefined, inLambda: boolean): void => {
    if (!local) return;
    if (node.type === 'MemberInvocation' && node.text && parent?.type === 'InvocationTerm') {
      names.add(node.text.replace(/`/g, ''));
    }
    if (node.type === 'ExternalConstantTerm') {
      const name = (node.text ?? '').replace(/^%/, '').replace(/^[`']|[`']$/g, '');
      if (!STRING_CONSTANTS.has(name)) local = false;
    }
    let lambda = inLambda;
    if (node.type === 'FunctionInvocation' && node.text) {
      if (NON_LOCAL_FUNCTIONS.has(node.text)) local = false;
      if (node.text === 'extension') names.add('extension');
      if (LAMBDAS.has(node.text)) lambda = true;
    }
    // `$this` inside where()/select()/... is the item; elsewhere it is the node as a whole.
    if (node.type === 'ThisInvocation' && !inLambda) local = false;
    if (node.type === 'IndexInvocation' || node.type === 'TotalInvocation') local = false;
    for (const c of node.children ?? []) visit(c, node, lambda);
  };
  visit(ast, undefined, false);
  return local ? [...names] : undefined;
}
