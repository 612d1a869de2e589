// One rule of the public acceptance suite: a rule the R4 specification states, a resource that
// keeps it and one that breaks it (made from the valid one by one change), and where the
// validator must say so. The suite measures what fhirguard catches in general, one rule at a
// time, so that each rule is counted once however many examples would break it.

export type Resource = Record<string, unknown>;

export interface Rule {
  /** Short, unique: `ext-context`, `bdl-11`, `per-1-partial`. */
  id: string;
  /** The rule in a sentence, as the specification states it. */
  rule: string;
  /** Where the specification states it (page#anchor or invariant key). */
  source: string;
  /** Keeps the rule: must raise no error. */
  valid: Resource;
  /** Breaks it: must raise an error whose FHIRPath expression starts with `at`. */
  invalid: Resource;
  at: string;
}

/** A deep copy of `r` with `change` applied, so that an invalid case differs from its valid one only there. */
export function breaking(r: Resource, change: (copy: Resource & Record<string, any>) => void): Resource {
  const copy = JSON.parse(JSON.stringify(r)) as Resource & Record<string, any>;
  change(copy);
  return copy;
}
