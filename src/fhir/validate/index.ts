// The validate stage of the request path: what a request must be before any worker sees
// it. Request-level rules of the RESTful API first (a body where one is needed, its
// resourceType matching the URL, the id consistent on update: 400), then the search
// parameters (400, or dropped with `Prefer: handling=lenient`), then the content: resources
// of create/update, patch documents, every entry of a batch/transaction, the Parameters of
// an $operation (422, one issue per problem). Warnings never block: they are returned.

import type { Interaction } from '../interaction';
import { FhirError, refuse, type Issue } from '../outcome';
import { checkFhirPathPatch, checkJsonPatch } from './patch';
import { checkHistoryParams, checkSearchParams } from './search';
import { defaultValidator, FhirValidator, hasErrors } from './validator';

export { FhirValidator, defaultValidator, hasErrors, preloadValidator } from './validator';
export type { ResourceValidationOptions } from './validator';

export interface ValidateOptions {
  /** `Prefer: handling=lenient`: unknown search parameters are dropped with a warning instead of refused. */
  lenient?: boolean;
  /** Profiles a created/updated resource must also conform to (besides its meta.profile). */
  profiles?: readonly string[];
  /** A profile that is not loaded is an error (the policy says so) rather than a warning. */
  unknownProfileIsError?: boolean;
  /** The validator to use (default: the process-wide one with the operator's profiles). */
  validator?: FhirValidator;
}

export interface ValidateResult {
  /** Issues that do not block (unknown profiles, dropped parameters, best-practice notes). */
  warnings: Issue[];
  /** Search parameters to remove before forwarding (lenient handling), as `name[:modifier][.chain]`. */
  droppedParams: string[];
}

/** Kinds whose request body is a resource of the URL's type. */
const RESOURCE_BODY_KINDS: ReadonlySet<string> = new Set(['create', 'update']);
/** Kinds whose query is search criteria (conditional interactions search too). */
const SEARCH_KINDS: ReadonlySet<string> = new Set(['search-type', 'search-system']);
const CONDITIONAL_KINDS: ReadonlySet<string> = new Set(['create', 'update', 'patch', 'delete']);
const HISTORY_KINDS: ReadonlySet<string> = new Set(['history-instance', 'history-type', 'history-system']);

/**
 * Checks a request (its parsed body and search parameters) against the interaction it
 * belongs to. Throws FhirError: 400 for a request that does not fit the API or bad search
 * parameters, 422 for invalid content. Returns the warnings and the parameters to drop.
 */
export function validateRequest(interaction: Interaction, body: unknown, opts: ValidateOptions = {}): ValidateResult {
  const result: ValidateResult = { warnings: [], droppedParams: [] };
  checkRequestShape(interaction, body);

  const searches = SEARCH_KINDS.has(interaction.kind) || (interaction.conditional && CONDITIONAL_KINDS.has(interaction.kind));
  if (searches || HISTORY_KINDS.has(interaction.kind)) {
    const search = searches
      ? checkSearchParams(interaction.resourceType ?? '', interaction.params, !!opts.lenient)
      : checkHistoryParams(interaction.params, !!opts.lenient);
    if (search.errors.length) throw new FhirError(400, 'invalid-search', search.errors);
    result.warnings.push(...search.warnings);
    result.droppedParams.push(...search.dropped);
  }

  const v = opts.validator ?? defaultValidator();
  const issues = contentIssues(v, interaction, body, opts);
  if (hasErrors(issues)) throw new FhirError(422, 'invalid-resource', issues.filter((i) => i.severity === 'error' || i.severity === 'fatal'));
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
      throw refuse(
        400,
        'wrong-type',
        'invalid',
        `body resourceType '${String(resource.resourceType)}' does not match the URL's type '${interaction.resourceType}'`,
        ['resourceType'],
      );
    }
    if (interaction.kind === 'update' && !interaction.conditional && resource.id !== interaction.id) {
      throw refuse(
        400,
        'id-mismatch',
        'invalid',
        resource.id === undefined
          ? `update of ${interaction.resourceType}/${interaction.id} needs the body's id`
          : `body id '${String(resource.id)}' does not match the URL's id '${interaction.id}'`,
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
