// The FHIR interaction cases of the reference worker, as one suite any target runs.
import { bundlesCases } from './rest-bundles';
import { operationsCases } from './rest-operations';
import { refusalsCases } from './rest-refusals';
import { resourcesCases } from './rest-resources';
import { searchCases } from './rest-search';
import type { TargetOf } from './target';

export function restCases(t: TargetOf): void {
  resourcesCases(t);
  bundlesCases(t);
  searchCases(t);
  operationsCases(t);
  refusalsCases(t);
}
