// The validate stage of the request path: what a request must be before any worker sees
// it. In two calls. validateSearch runs before the policy: the search parameters (400, or
// dropped with `Prefer: handling=lenient`), so that an unknown parameter is the client's
// error rather than a reach the policy cannot bound, and so that the policy decides on
// exactly the parameters that are forwarded. validateRequest runs after it: request-level
// rules of the RESTful API (a body where one is needed, its resourceType matching the URL,
// the id consistent on update: 400), then the content: resources of create/update, patch
// documents, every entry of a batch/transaction, the Parameters of an $operation (422, one
// issue per problem). Warnings never block: they are returned.

import type { Interaction } from '../interaction';
import { FhirError, refuse, type Issue } from '../outcome';
import { checkFhirPathPatch, checkJsonPatch } from './patch';
import { checkHistoryParams, checkSearchParams, fullName, type SearchCheck } from './search';
import { defaultValidator, FhirValidator, hasErrors } from './validator';

export { FhirValidator, defaultValidator, hasErrors, preloadValidator } from './validator';
export type { ResourceValidationOptions } from './validator';

export interface ValidateOptions {
  /** Profiles a created/updated resource must also conform to (besides its meta.profile). */
  profiles?: readonly string[];
  /** A profile that is not loaded is an error (the policy says so) rather than a warning. */
  unknownProfileIsError?: boolean;
  /** The validator to use (default: the process-wide one with the operator's profiles). */
  validator?: FhirValidator;
}

export interface ValidateResult {
  /** Issues that do not block (unknown profiles, best-practice notes). */
  warnings: Issue[];
}

export interface SearchVerdict {
  /** One per dropped parameter (lenient handling). */
  warnings: Issue[];
  /** Search parameters to remove before forwarding (lenient handling), as `name[:modifier][.chain]`. */
  droppedParams: string[];
}

/** Kinds whose request body is a resource of the URL's type. */
const RESOURCE_BODY_KINDS: ReadonlySet<string> = new Set(['create', 'update']);
/** Searches: their URL's unknown parameters may be dropped (conditional interactions' criteria never are). */
const SEARCH_KINDS: ReadonlySet<string> = new Set(['search-type', 'search-system']);
const CONDITIONAL_KINDS: ReadonlySet<string> = new Set(['create', 'update', 'patch', 'delete']);
const HISTORY_KINDS: ReadonlySet<string> = new Set(['history-instance', 'history-type', 'history-system']);

/**
 * Checks the search parameters of a search, a conditional interaction's criteria, a
 * history's parameters, and those of every entry of a batch or transaction. Throws a 400
 * FhirError naming every problem. `lenient` (`Prefer: handling=lenient`) drops unknown
 * parameters of searches and histories, and only those in the URL: the criteria of a
 * conditional create, update, patch or delete select what it changes and are always checked
 * strictly, as are a `_search` form body (forwarded as sent) and bundle entries. What is
 * dropped is removed from `interaction.params` too, so the policy decides on what is forwarded.
 */
export function validateSearch(interaction: Interaction, lenient = false): SearchVerdict {
  if (interaction.entries !== undefined) {
    checkEntries(interaction.entries);
    return { warnings: [], droppedParams: [] };
  }
  const check = searchCheck(interaction, lenient);
  if (check === undefined) return { warnings: [], droppedParams: [] };
  if (check.errors.length) throw new FhirError(400, 'invalid-search', check.errors);
  if (check.dropped.length) {
    // Every occurrence of a dropped name in the URL goes, as the forwarded query loses them all
    // alike; a form body's parameters stay, since the body is forwarded as sent.
    const drop = new Set(check.dropped);
    const inUrl = interaction.params.length - (interaction.formParams ?? 0);
    interaction.params = interaction.params.filter((p, k) => k >= inUrl || !drop.has(fullName(p)));
  }
  return { warnings: check.warnings, droppedParams: [...new Set(check.dropped)] };
}

/** The check of the interaction's parameters, or undefined when its query is not checked here. */
function searchCheck(i: Interaction, lenient: boolean): SearchCheck | undefined {
  if (SEARCH_KINDS.has(i.kind)) {
    return checkSearchParams(i.resourceType ?? '', i.params, {
      lenient,
      strictFrom: i.params.length - (i.formParams ?? 0),
      compartment: i.compartment?.resourceType,
    });
  }
  if (i.conditional && CONDITIONAL_KINDS.has(i.kind)) return checkSearchParams(i.resourceType ?? '', i.params);
  if (HISTORY_KINDS.has(i.kind)) return checkHistoryParams(i.params, lenient);
  return undefined;
}

/** Bundle entries are forwarded inside the Bundle as sent: checked strictly, the first bad entry refuses it. */
function checkEntries(entries: readonly Interaction[]): void {
  for (let k = 0; k < entries.length; k++) {
    const check = searchCheck(entries[k], false);
    if (check === undefined || check.errors.length === 0) continue;
    const at = `Bundle.entry[${k}].request.url`;
    throw new FhirError(
      400,
      'invalid-search',
      check.errors.map((e) => ({ ...e, diagnostics: `${at}: ${e.diagnostics}`, expression: [at] })),
    );
  }
}

/**
 * Checks a request (its parsed body) against the interaction it belongs to, after
 * validateSearch and the policy. Throws FhirError: 400 for a request that does not fit the
 * API, 422 for invalid content. Returns the warnings.
 */
export function validateRequest(interaction: Interaction, body: unknown, opts: ValidateOptions = {}): ValidateResult {
  const result: ValidateResult = { warnings: [] };
  checkRequestShape(interaction, body);

  const v = opts.validator ?? defaultValidator();
  const issues = contentIssues(v, interaction, body, opts);
  if (hasErrors(issues))
    throw new FhirError(
      422,
      'invalid-resource',
      issues.filter((i) => i.severity === 'error' || i.severity === 'fatal'),
    );
  result.warnings.push(...issues);
  return result;
}

/** The RESTful API's own rules for a body: 400 when the request does not fit them. */
function checkRequestShape(interaction: Interaction, body: unknown): void {
  const isObject = body !== undefined && body !== null && typeof body === 'object' && !Array.isArray(body);
  if (RESOURCE_BODY_KINDS.has(interaction.kind)) {
    if (!isObject) throw refuse(400, 'missing-body', 'required', `${interaction.kind} needs a JSON resource body`);
    const resource = body as { resourceType?: unknown; id?: unknown };
    if (resource.resourceType !== interaction.resourceType) {
      throw refuse(400, 'wrong-type', 'invalid', `body resourceType '${String(resource.resourceType)}' does not match the URL's type '${interaction.resourceType}'`, ['resourceType']);
    }
    if (interaction.kind === 'update' && !interaction.conditional && resource.id !== interaction.id) {
      throw refuse(
        400,
        'id-mismatch',
        'invalid',
        resource.id === undefined ? `update of ${interaction.resourceType}/${interaction.id} needs the body's id` : `body id '${String(resource.id)}' does not match the URL's id '${interaction.id}'`,
        [`${interaction.resourceType}.id`],
      );
    }
  } else if (interaction.kind === 'batch' || interaction.kind === 'transaction') {
    const bundle = body as { resourceType?: unknown; type?: unknown } | undefined;
    if (!isObject || bundle?.resourceType !== 'Bundle') {
      throw refuse(400, 'missing-body', 'required', `a ${interaction.kind} needs a Bundle body`);
    }
    if (bundle.type !== interaction.kind) {
      throw refuse(400, 'wrong-type', 'invalid', `a ${interaction.kind} needs a Bundle of type '${interaction.kind}', not '${String(bundle.type)}'`, ['Bundle.type']);
    }
  } else if (interaction.kind === 'patch' && (body === undefined || body === null)) {
    throw refuse(400, 'missing-body', 'required', 'patch needs a JSON Patch or FHIRPath Patch body');
  }
}

/** Every issue of the request's content (errors and warnings). */
function contentIssues(v: FhirValidator, interaction: Interaction, body: unknown, opts: ValidateOptions): Issue[] {
  const resourceOpts = { profiles: opts.profiles, unknownProfileIsError: opts.unknownProfileIsError };
  switch (interaction.kind) {
    case 'create':
    case 'update':
      return v.validateResource(body, resourceOpts);
    case 'patch':
      return patchIssues(v, interaction.resourceType ?? '', body);
    case 'batch':
    case 'transaction':
      return [...v.validateResource(body, { unknownProfileIsError: opts.unknownProfileIsError }), ...entryPatchIssues(v, interaction, body)];
    case 'operation':
      // An operation's input is a Parameters resource (or, for some operations, a resource).
      if (body !== undefined && body !== null && typeof body === 'object' && !Array.isArray(body)) {
        return v.validateResource(body, { unknownProfileIsError: opts.unknownProfileIsError });
      }
      return [];
    default:
      return [];
  }
}

function patchIssues(v: FhirValidator, resourceType: string, body: unknown, at?: string): Issue[] {
  if (Array.isArray(body)) return checkJsonPatch(v, resourceType, body, at);
  return checkFhirPathPatch(v, resourceType, body, at);
}

/**
 * Patch entries of a batch/transaction: the entry's resource is a Binary holding a JSON Patch
 * or a Parameters holding a FHIRPath Patch.
 */
function entryPatchIssues(v: FhirValidator, interaction: Interaction, body: unknown): Issue[] {
  const entries = (body as { entry?: unknown }).entry;
  if (!Array.isArray(entries) || !interaction.entries) return [];
  const issues: Issue[] = [];
  interaction.entries.forEach((e, i) => {
    if (e.kind !== 'patch') return;
    const resource = (entries[i] as { resource?: Record<string, unknown> } | undefined)?.resource;
    const at = `Bundle.entry[${i}].resource`;
    if (resource?.resourceType === 'Binary') {
      let doc: unknown;
      try {
        doc = JSON.parse(Buffer.from(String(resource.data ?? ''), 'base64').toString('utf8'));
      } catch {
        issues.push({ severity: 'error', code: 'structure', diagnostics: 'the Binary of a patch entry must hold a JSON Patch', expression: [`${at}.data`] });
        return;
      }
      issues.push(...checkJsonPatch(v, e.resourceType ?? '', doc, `${at}.data`));
    } else if (resource?.resourceType === 'Parameters') {
      issues.push(...checkFhirPathPatch(v, e.resourceType ?? '', resource, at, true));
    } else {
      issues.push({ severity: 'error', code: 'required', diagnostics: 'a patch entry needs a Binary (JSON Patch) or Parameters (FHIRPath Patch) resource', expression: [at] });
    }
  });
  return issues;
}
