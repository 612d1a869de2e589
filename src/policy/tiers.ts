// Tier settings with their defaults, and the one derived from the rules: whether a tier can
// write. A read-only tier's workers open the database read-only and get read-only mounts,
// so the derivation errs toward "may write" for anything whose effect fhirguard cannot know.

import type { InteractionKind } from '../fhir/interaction';
import type { TierFields } from './schema';
import { compileServer } from './server';
import type { Decided } from './table';
import type { TierConfig } from './types';
import { compileUpstreamTls } from './upstream-tls';
import type { SourcePositions } from './yaml-check';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_READ_WORKERS = 2;
export const DEFAULT_WRITE_WORKERS = 1;
/** A server tier's default: an operator's server is usually one heavy process that scales itself. */
export const DEFAULT_SERVER_WORKERS = 1;

/** Interactions that write by definition. */
const WRITES: ReadonlySet<InteractionKind> = new Set<InteractionKind>(['create', 'update', 'patch', 'delete']);
/** Interactions whose entries may write, executed by the bundle's own tier. */
const MAY_WRITE: ReadonlySet<InteractionKind> = new Set<InteractionKind>(['batch', 'transaction']);

/**
 * R4 operations that never change stored data. Any other operation (and a rule allowing
 * every operation) may write: `$meta-add`, `$process-message`, `$apply`, a server's own...
 */
export const READ_ONLY_OPERATIONS: ReadonlySet<string> = new Set(['$validate', '$everything', '$meta', '$expand', '$lookup', '$validate-code', '$subsumes', '$translate', '$lastn', '$stats']);

interface Writes {
  /** A rule that routes a writing interaction to the tier (explicit readOnly: true contradicts it). */
  surely?: { rule: number; what: string };
  /** Something that may write reaches the tier (readOnly derived false, explicit true allowed). */
  maybe: boolean;
}

function writesPerTier(table: { entries(): Iterable<Decided> }, count: number): Writes[] {
  const out: Writes[] = Array.from({ length: count }, () => ({ maybe: false }));
  for (const { kind, operation, verdict } of table.entries()) {
    if (verdict.tier < 0) continue;
    const w = out[verdict.tier];
    if (WRITES.has(kind)) {
      w.surely ??= { rule: verdict.rule, what: kind };
      w.maybe = true;
    } else if (MAY_WRITE.has(kind) || (kind === 'operation' && !(operation && READ_ONLY_OPERATIONS.has(operation)))) {
      w.maybe = true;
    }
  }
  return out;
}

/** Builds the tiers with defaults applied; reports contradictions into `at`. */
export function buildTiers(fields: readonly TierFields[], table: { entries(): Iterable<Decided> }, at: SourcePositions, policyFile: string): TierConfig[] {
  const writes = writesPerTier(table, fields.length);
  return fields.map((f, rank) => {
    const path = `tiers[${rank}]`;
    // The front door's profiles, cgroup and counters go by this name.
    if (f.name === 'proxy') at.report(`${path}.name`, "'proxy' is the front door's own name (its profiles and metrics): give the tier another");
    const upstreams = f.upstreams ?? [];
    const w = writes[rank];
    let readOnly = !w.maybe;
    if (f.readOnly === true && w.surely) {
      at.report(`${path}.readOnly`, `tier '${f.name}' cannot be read-only: rules[${w.surely.rule}] routes ${w.surely.what} to it`);
    } else if (f.readOnly === false && readOnly) {
      at.report(`${path}.readOnly`, `readOnly: false would loosen tier '${f.name}', to which no rule routes anything that writes; remove the field`);
    } else if (f.readOnly === true) {
      readOnly = true;
    }
    if (f.workers !== undefined && upstreams.length > 0) {
      at.report(`${path}.workers`, `tier '${f.name}' has upstreams; workers counts embedded reference workers, which a tier with upstreams does not start`);
    }
    if (f.server && upstreams.length > 0) {
      at.report(`${path}.server`, `tier '${f.name}' has upstreams: it is served either by upstreams outside fhirguard or by a server the agent runs, not both`);
    }
    const server = f.server ? compileServer(f.server, policyFile, path, readOnly, at) : undefined;
    const tls = f.tls ? compileUpstreamTls(f.tls, upstreams, policyFile, path, at) : undefined;
    return Object.freeze({
      name: f.name,
      upstreams: Object.freeze([...upstreams]) as string[],
      ...(server ? { server } : {}),
      ...(tls ? { tls } : {}),
      workers: upstreams.length > 0 ? 0 : (f.workers ?? (server ? DEFAULT_SERVER_WORKERS : readOnly ? DEFAULT_READ_WORKERS : DEFAULT_WRITE_WORKERS)),
      timeoutMs: f.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      mode: f.mode ?? 'enforce',
      enforcement: f.enforcement ?? 'preferred',
      readOnly,
      rank,
    });
  });
}
