// Every refusal fhirguard makes is a FHIR OperationOutcome with an HTTP status. FhirError
// carries both from wherever the problem is found (classify, policy, validate, route) to the
// one place that writes the response.

import type { RefusalReason } from './refusal-reasons';

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

/** Issue type codes from the R4 value set http://hl7.org/fhir/ValueSet/issue-type. */
export type IssueCode =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'invariant'
  | 'security'
  | 'login'
  | 'unknown'
  | 'expired'
  | 'forbidden'
  | 'suppressed'
  | 'processing'
  | 'not-supported'
  | 'duplicate'
  | 'multiple-matches'
  | 'not-found'
  | 'deleted'
  | 'too-long'
  | 'code-invalid'
  | 'extension'
  | 'too-costly'
  | 'business-rule'
  | 'conflict'
  | 'transient'
  | 'lock-error'
  | 'no-store'
  | 'exception'
  | 'timeout'
  | 'incomplete'
  | 'throttled'
  | 'informational';

export interface Issue {
  severity: IssueSeverity;
  code: IssueCode;
  diagnostics: string;
  /** FHIRPath locations of the problem, e.g. `Patient.birthDate`. */
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: Issue[];
}

/**
 * A refusal: HTTP status plus the issues that explain it. `reason` is a short, bounded
 * label for the refusals metric (e.g. `unknown-type`, `policy`, `invalid-resource`).
 */
export class FhirError extends Error {
  readonly status: number;
  readonly reason: RefusalReason;
  readonly issues: Issue[];
  /** Response headers the refusal needs besides the OperationOutcome (WWW-Authenticate, say). */
  headers?: Readonly<Record<string, string>>;

  constructor(status: number, reason: RefusalReason, issues: Issue[] | Issue | string, code: IssueCode = 'invalid') {
    const list: Issue[] = typeof issues === 'string' ? [{ severity: 'error', code, diagnostics: issues }] : Array.isArray(issues) ? issues : [issues];
    super(list.map((i) => i.diagnostics).join('; '));
    this.name = 'FhirError';
    this.status = status;
    this.reason = reason;
    this.issues = list;
  }

  toOutcome(): OperationOutcome {
    return operationOutcome(this.issues);
  }
}

export function operationOutcome(issues: Issue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

/** Shorthand for the common single-issue refusal. */
export function refuse(status: number, reason: RefusalReason, code: IssueCode, diagnostics: string, expression?: string[]): FhirError {
  return new FhirError(status, reason, [{ severity: 'error', code, diagnostics, ...(expression ? { expression } : {}) }]);
}
