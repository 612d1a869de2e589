// How refusals name an interaction: in FHIR's own words, without ids or values (those may
// identify a patient and end up in logs).

import type { Interaction } from '../fhir/interaction';
import { SYSTEM_KINDS } from './table';

export function describeInteraction(i: Interaction): string {
  if (i.kind === 'operation') {
    const op = i.operation ?? '$(unnamed)';
    if (i.level === 'system' || !i.resourceType) return `operation ${op} at the system level`;
    return `operation ${op} on ${i.resourceType}${i.level === 'instance' ? '/[id]' : ''}`;
  }
  if (i.compartment) return `search of ${i.compartment.resourceType}/[id]/${i.resourceType ?? '*'}`;
  if (SYSTEM_KINDS.has(i.kind)) return i.kind;
  return `${i.conditional ? 'conditional ' : ''}${i.kind} of ${i.resourceType ?? '(no type)'}`;
}
