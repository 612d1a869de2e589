// What a resource body must be before the worker stores it. Request-level mistakes (not a
// JSON object, wrong or unknown resourceType, bad id) are 400s; a body that is a resource
// but not a valid one is a 422 with the validator's issues. Validation is @medplum/core's
// validateResource against the R4 StructureDefinitions (structure, cardinality, primitive
// formats), minus two kinds of finding where it disagrees with R4 itself and would refuse
// valid resources (found with the official R4 examples in ../shared/corpus): constraint
// (invariant) evaluation, which in medplum 4 misreads some FHIRPath (`ras-2` fails on valid
// RiskAssessments), and its base64Binary pattern, stricter than R4's, which allows
// whitespace. Invariants are the validate stage's business in front of the worker.

import { validateResource } from '@medplum/core';
import { refuse, FhirError, type Issue, type IssueCode } from '../../fhir/outcome';
import { isResourceType } from '../../fhir/search-parameters';
import { ID_RE } from '../indexing/references';
import type { Json } from '../storage/store';

interface MedplumIssue {
  severity?: string;
  code?: string;
  details?: { text?: string };
  diagnostics?: string;
  expression?: string[];
}

/** Findings of medplum's validator that R4 does not support (see the file comment). */
function isKnownFalseFinding(issue: MedplumIssue): boolean {
  return issue.code === 'invariant' || issue.details?.text === 'Invalid base64Binary format';
}

/** Runs the validator; returns its issues (errors and warnings) in fhirguard's shape. */
export function validationIssues(resource: Json): Issue[] {
  let issues: MedplumIssue[];
  try {
    issues = validateResource(resource as unknown as Parameters<typeof validateResource>[0]) as MedplumIssue[];
  } catch (err) {
    const outcome = (err as { outcome?: { issue?: MedplumIssue[] } }).outcome;
    if (!outcome?.issue) throw refuse(422, 'invalid-resource', 'structure', `resource cannot be validated: ${(err as Error).message}`);
    issues = outcome.issue;
  }
  return issues
    .filter((i) => !isKnownFalseFinding(i))
    .map((i) => ({
      severity: (i.severity ?? 'error') as Issue['severity'],
      code: (i.code ?? 'invalid') as IssueCode,
      diagnostics: i.details?.text ?? i.diagnostics ?? 'invalid',
      ...(i.expression ? { expression: i.expression } : {}),
    }));
}

/**
 * Checks a body that is to be stored as a resource of `type` (when the URL names one).
 * Returns it as an object; throws FhirError 400/422.
 */
export function checkResource(body: unknown, type: string | undefined): Json {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw refuse(400, 'missing-body', 'required', 'the request needs a JSON resource body');
  }
  const resource = body as Json;
  const rt = resource.resourceType;
  if (typeof rt !== 'string' || !isResourceType(rt)) {
    throw refuse(400, 'unknown-type', 'not-supported', `body resourceType '${String(rt)}' is not an R4 resource type`, ['resourceType']);
  }
  if (type !== undefined && rt !== type) {
    throw refuse(400, 'wrong-type', 'invalid', `body resourceType '${rt}' does not match the URL's type '${type}'`, ['resourceType']);
  }
  if (resource.id !== undefined && (typeof resource.id !== 'string' || !ID_RE.test(resource.id))) {
    throw refuse(400, 'bad-id', 'invalid', `body id '${String(resource.id)}' is not a FHIR id ([A-Za-z0-9-.]{1,64})`, [`${rt}.id`]);
  }
  if (resource.meta !== undefined && (typeof resource.meta !== 'object' || resource.meta === null || Array.isArray(resource.meta))) {
    throw refuse(400, 'bad-meta', 'structure', `${rt}.meta must be an object`, [`${rt}.meta`]);
  }
  const errors = validationIssues(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (errors.length) throw new FhirError(422, 'invalid-resource', errors);
  return resource;
}
