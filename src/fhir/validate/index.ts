// The validate stage of the request path: what a body must be before any worker sees it.
// This first layer checks the request-level rules of the RESTful API (a body where one is
// needed, its resourceType matching the URL, the id consistent on update). Structural and
// terminology validation against the R4 StructureDefinitions builds on it.

import type { Interaction } from '../interaction';
import { refuse } from '../outcome';

/** Kinds whose request body is a resource of the URL's type. */
const RESOURCE_BODY_KINDS: ReadonlySet<string> = new Set(['create', 'update']);

/**
 * Checks a parsed request body against the interaction it belongs to. Throws FhirError
 * (400 for a body that does not fit the request, 422 for an invalid resource).
 */
export function validateRequest(interaction: Interaction, body: unknown): void {
  if (!RESOURCE_BODY_KINDS.has(interaction.kind)) return;
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw refuse(400, 'missing-body', 'required', `${interaction.kind} needs a JSON resource body`);
  }
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
}
