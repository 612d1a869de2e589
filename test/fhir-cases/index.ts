// The FHIR interaction cases of the reference worker, as one suite any target runs; a server
// that does not support a case (HAPI FHIR behind fhirguard) names it, with the reason.
import { bundlesCases } from './rest-bundles';
import { operationsCases } from './rest-operations';
import { refusalsCases } from './rest-refusals';
import { resourcesCases } from './rest-resources';
import { searchCases } from './rest-search';
import type { CaseOptions, TargetOf } from './target';

export function restCases(t: TargetOf, o: CaseOptions = {}): void {
  resourcesCases(t, o);
  bundlesCases(t, o);
  searchCases(t, o);
  operationsCases(t, o);
  refusalsCases(t, o);
}
