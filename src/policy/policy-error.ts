// Every problem with a policy file is reported as `<file>:<line>:<col>: <field path>: <what
// is wrong>`, the shape editors and CI logs turn into clickable locations. All problems found
// in one pass are reported together so an operator fixes a file in one round.

export interface PolicyIssue {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  /** Field path in the file, e.g. `rules[2].resources[0]`; `(document)` or `(syntax)` when no field applies. */
  path: string;
  message: string;
}

export function formatIssue(i: PolicyIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/** A policy file that cannot be loaded. `message` holds one formatted line per issue. */
export class PolicyError extends Error {
  readonly issues: readonly PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'PolicyError';
    this.issues = issues;
  }
}
