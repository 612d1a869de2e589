// The pipeline's authorization stage, for policies with `authorization:`: the request must
// carry a verified token (authenticate.ts checked it before the pipeline ran), and the token's
// scopes must grant every type the request reads or writes (src/auth/access.ts). A granular
// scope's query is added to the search sent upstream; a patient scope restricts the request
// to the launch patient's compartment (patient-access.ts).

import { authorize } from '../auth/access';
import { noToken, tokenInQuery } from '../auth/auth-errors';
import type { Interaction } from '../fhir/interaction';
import { strictQuery } from './forward-query';
import { restrictToPatient } from '../auth/patient-access';
import type { RequestState } from './request-state';

/** A token in the URL would be logged and forwarded: refused before anything else reads it. */
export function refuseTokenInQuery(i: Interaction): void {
  for (const p of i.params) if (p.name === 'access_token') throw tokenInQuery();
}

function appendQuery(query: string, params: ReadonlyArray<readonly [string, string]>): string {
  const added = params.map(([name, value]) => `${strictQuery(name)}=${strictQuery(value)}`).join('&');
  return query === '' ? added : `${query}&${added}`;
}

/** Decides what the request's token lets it do, and narrows what is sent to match; throws 401/403. */
export function authorizeRequest(i: Interaction, state: RequestState): void {
  // The CapabilityStatement is public: a SMART client reads it to find the issuer.
  if (i.kind === 'capabilities') return;
  const who = state.identity;
  if (!who) throw noToken();
  const access = authorize(i, who);
  state.access = access;
  if (access.narrowing) state.forwardQuery = appendQuery(state.forwardQuery, access.narrowing);
  if (access.patient !== undefined) {
    const added = restrictToPatient(i, access.patient);
    if (added.length > 0) state.forwardQuery = appendQuery(state.forwardQuery, added);
  }
}
