// Expands ValueSets into code lists offline, from the CodeSystems and ValueSets that the R4
// definitions ship. A value set that needs an external terminology (SNOMED CT, UCUM, BCP-47,
// MIME types...) or a filter fhirguard cannot evaluate expands to `null`: its bindings are
// then not checked, rather than rejecting codes fhirguard cannot judge.

import type { ModelValueSet } from './spec';

interface Concept {
  code: string;
  concept?: Concept[];
}

export interface CodeSystemLike {
  resourceType: 'CodeSystem';
  url: string;
  content?: string;
  concept?: Concept[];
}

export interface ValueSetLike {
  resourceType: 'ValueSet';
  url: string;
  compose?: {
    include: ComposeSet[];
    exclude?: ComposeSet[];
  };
  expansion?: { contains?: { system?: string; code?: string; contains?: unknown[] }[] };
}

interface ComposeSet {
  system?: string;
  concept?: { code: string }[];
  filter?: { property: string; op: string; value: string }[];
  valueSet?: string[];
}

type Codes = Map<string, Set<string>>;

export class ValueSetExpander {
  private readonly codeSystems = new Map<string, CodeSystemLike>();
  private readonly valueSets = new Map<string, ValueSetLike>();
  private readonly cache = new Map<string, Codes | null>();

  add(resource: { resourceType: string; url?: string }): void {
    if (!resource.url) return;
    const url = stripVersion(resource.url);
    if (resource.resourceType === 'CodeSystem') this.codeSystems.set(url, resource as CodeSystemLike);
    else if (resource.resourceType === 'ValueSet') this.valueSets.set(url, resource as ValueSetLike);
  }

  knows(url: string): boolean {
    return this.valueSets.has(stripVersion(url));
  }

  /** The codes of a value set by system, or null when it cannot be expanded offline. */
  expand(url: string): ModelValueSet {
    const codes = this.codes(stripVersion(url), new Set());
    if (!codes) return null;
    const out: Record<string, string[]> = {};
    for (const system of [...codes.keys()].sort()) out[system] = [...codes.get(system)!].sort();
    return out;
  }

  private codes(url: string, visiting: Set<string>): Codes | null {
    if (this.cache.has(url)) return this.cache.get(url)!;
    if (visiting.has(url)) return null;
    visiting.add(url);
    const vs = this.valueSets.get(url);
    let result: Codes | null = null;
    if (vs?.compose) result = this.compose(vs.compose, visiting);
    else if (vs?.expansion?.contains) result = fromExpansion(vs.expansion.contains);
    visiting.delete(url);
    this.cache.set(url, result);
    return result;
  }

  private compose(compose: NonNullable<ValueSetLike['compose']>, visiting: Set<string>): Codes | null {
    const out: Codes = new Map();
    for (const inc of compose.include) {
      const part = this.composeSet(inc, visiting);
      if (!part) return null;
      for (const [system, codes] of part) {
        const set = out.get(system) ?? new Set<string>();
        for (const c of codes) set.add(c);
        out.set(system, set);
      }
    }
    for (const exc of compose.exclude ?? []) {
      if (!exc.system || exc.filter?.length || exc.valueSet?.length || !exc.concept) return null;
      const set = out.get(exc.system);
      for (const c of exc.concept) set?.delete(c.code);
    }
    return out;
  }

  private composeSet(inc: ComposeSet, visiting: Set<string>): Codes | null {
    if (inc.valueSet?.length) {
      if (inc.system) return null; // an intersection with a system: not needed by R4 core
      const out: Codes = new Map();
      for (const url of inc.valueSet) {
        const part = this.codes(stripVersion(url), visiting);
        if (!part) return null;
        for (const [system, codes] of part) out.set(system, new Set([...(out.get(system) ?? []), ...codes]));
      }
      return out;
    }
    if (!inc.system) return null;
    if (inc.concept?.length) return new Map([[inc.system, new Set(inc.concept.map((c) => c.code))]]);
    const cs = this.codeSystems.get(inc.system);
    if (!cs || cs.content !== 'complete' || !cs.concept) return null;
    if (!inc.filter?.length) return new Map([[inc.system, new Set(allCodes(cs.concept))]]);
    let selected: Set<string> | undefined;
    for (const f of inc.filter) {
      const part = filterCodes(cs.concept, f);
      if (!part) return null;
      const previous: Set<string> | undefined = selected;
      selected = previous ? new Set([...previous].filter((c) => part.has(c))) : part;
    }
    return new Map([[inc.system, selected ?? new Set<string>()]]);
  }
}

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar >= 0 ? url.slice(0, bar) : url;
}

function allCodes(concepts: Concept[], out: string[] = []): string[] {
  for (const c of concepts) {
    out.push(c.code);
    if (c.concept) allCodes(c.concept, out);
  }
  return out;
}

function findConcept(concepts: Concept[], code: string): Concept | undefined {
  for (const c of concepts) {
    if (c.code === code) return c;
    const inner = c.concept && findConcept(c.concept, code);
    if (inner) return inner;
  }
  return undefined;
}

/** The hierarchy filters of R4 core value sets; anything else is not evaluated. */
function filterCodes(concepts: Concept[], f: { property: string; op: string; value: string }): Set<string> | null {
  if (f.property !== 'concept') return null;
  const root = findConcept(concepts, f.value);
  if (!root) return null;
  const below = allCodes(root.concept ?? []);
  if (f.op === 'is-a') return new Set([root.code, ...below]);
  if (f.op === 'descendent-of') return new Set(below);
  return null;
}

function fromExpansion(contains: NonNullable<NonNullable<ValueSetLike['expansion']>['contains']>): Codes {
  const out: Codes = new Map();
  const visit = (list: typeof contains): void => {
    for (const c of list) {
      if (c.system && c.code) out.set(c.system, (out.get(c.system) ?? new Set()).add(c.code));
      if (c.contains) visit(c.contains as typeof contains);
    }
  };
  visit(contains);
  return out;
}
