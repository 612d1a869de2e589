// A batch or transaction goes whole to the tier its own rule names, so that tier executes
// every entry: an entry the policy denies, one it would send to a more privileged tier, or
// one that may write inside a read-only tier, refuses the whole bundle before any of it runs.

import type { Interaction } from '../fhir/interaction';
import { FhirError, refuse } from '../fhir/outcome';
import { describeInteraction } from './describe';
import type { TierConfig } from './types';

function entryRefusal(bundle: Interaction, index: number, why: string): FhirError {
  const at = `Bundle.entry[${index}]`;
  return refuse(403, 'policy', 'forbidden', `${bundle.kind} refused: ${at}: ${why}`, [at]);
}

/** Decides every entry of `bundle` (served by `tier`); throws a 403 naming the first refused entry. */
export function checkEntries(bundle: Interaction, tier: TierConfig, decide: (entry: Interaction) => TierConfig): void {
  // A bundle whose entries were not classified cannot be decided: fail closed (an internal error, not a pass).
  if (bundle.entries === undefined) throw new Error(`policy: ${bundle.kind} reached the policy without its classified entries`);
  bundle.entries.forEach((entry, index) => {
    if (entry.kind === 'batch' || entry.kind === 'transaction') {
      throw refuse(400, 'invalid-bundle', 'not-supported', `${bundle.kind} refused: Bundle.entry[${index}]: a ${entry.kind} cannot be nested in a ${bundle.kind}`, [`Bundle.entry[${index}]`]);
    }
    let served: TierConfig;
    try {
      served = decide(entry);
    } catch (e) {
      if (e instanceof FhirError) throw entryRefusal(bundle, index, e.issues.map((i) => i.diagnostics).join('; '));
      throw e;
    }
    if (served.rank > tier.rank) {
      throw entryRefusal(bundle, index, `${describeInteraction(entry)} is served by tier '${served.name}', more privileged than tier '${tier.name}' that serves this ${bundle.kind}`);
    }
    if (tier.readOnly && !served.readOnly) {
      throw entryRefusal(bundle, index, `${describeInteraction(entry)} may write (tier '${served.name}'), and tier '${tier.name}' that serves this ${bundle.kind} is read-only`);
    }
  });
}
