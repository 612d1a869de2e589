// From schema-checked fields to a Policy: the checks that need more than one field (a rule's
// tier exists, tier xor deny, operations only with the operation interaction...), then the
// decision table, the tiers, and warnings for what loads but is probably a mistake.

import { compileAuthorization } from './authorization';
import { Decider } from './decide';
import { IdentityDecisions, IdentityRules } from './identity-rules';
import { loadReferenceGraph } from './reference-graph';
import { namesIdentity, type PolicyFields, type RuleFields } from './schema';
import { type Decided, SYSTEM_KINDS } from './table';
import { compileLimits } from './limits';
import { compileSupplyChain } from './supply-chain';
import { buildTiers } from './tiers';
import type { Policy, TierConfig } from './types';
import type { SourcePositions } from './yaml-check';

function checkTierNames(fields: PolicyFields, at: SourcePositions): Map<string, number> {
  const index = new Map<string, number>();
  fields.tiers.forEach((t, i) => {
    const first = index.get(t.name);
    if (first !== undefined) at.report(`tiers[${i}].name`, `tier '${t.name}' is already defined by tiers[${first}]`);
    else index.set(t.name, i);
  });
  return index;
}

function checkRule(r: RuleFields, k: number, tiers: ReadonlyMap<string, number>, at: SourcePositions, authorization: boolean): void {
  const path = `rules[${k}]`;
  // A client certificate is known without authorization (the listener verifies it); a token's claims are not.
  const tokenField = (['clients', 'scopes', 'patient'] as const).find((f) => r[f] !== undefined);
  if (tokenField !== undefined && !authorization) {
    at.report(`${path}.${tokenField}`, `${tokenField} matches who asks, which only a policy with an authorization: block knows`);
  }
  if (r.tier !== undefined && r.deny !== undefined) at.report(`${path}.deny`, 'a rule has either tier: <name> or deny: true, not both');
  if (r.tier === undefined && r.deny === undefined) at.report(path, 'a rule needs tier: <name> (serve what it matches) or deny: true (refuse it)');
  if (r.tier !== undefined && !tiers.has(r.tier)) {
    at.report(`${path}.tier`, `tier '${r.tier}' is not defined; the tiers are ${[...tiers.keys()].join(', ')}`);
  }
  if (r.operations !== undefined && !r.interactions.includes('operation')) {
    at.report(`${path}.operations`, 'operations applies to the operation interaction only; add operation to interactions');
  }
  if (r.resources.includes('*') && r.resources.length > 1) {
    at.report(`${path}.resources`, '"*" already covers every type: list either "*" or resource types');
  }
  if (!r.resources.includes('*')) {
    r.interactions.forEach((kind, j) => {
      if (SYSTEM_KINDS.has(kind)) {
        at.report(`${path}.interactions[${j}]`, `${kind} is a system-level interaction, with no resource type: it needs resources: ["*"]`);
      }
    });
  }
}

function warningsOf(file: string, fields: PolicyFields, decided: Iterable<Decided>, tiers: readonly TierConfig[]): string[] {
  const usedRules = new Set<number>();
  const usedTiers = new Set<number>();
  for (const { verdict } of decided) {
    usedRules.add(verdict.rule);
    usedTiers.add(verdict.tier);
  }
  const warnings: string[] = [];
  fields.rules.forEach((_, k) => {
    if (!usedRules.has(k)) warnings.push(`${file}: rules[${k}] never matches: earlier rules decide everything it covers${namesIdentity(fields.rules[k]) ? ' for the identities it names' : ''}`);
  });
  tiers.forEach((t) => {
    if (!usedTiers.has(t.rank)) warnings.push(`${file}: tier '${t.name}' serves nothing: no rule routes to it`);
  });
  return warnings;
}

/** Builds the policy; reports problems into `at` and returns undefined when there are any. */
export function compile(fields: PolicyFields, file: string, digest: string, at: SourcePositions): Policy | undefined {
  const before = at.issues.length;
  const tierIndex = checkTierNames(fields, at);
  fields.rules.forEach((r, k) => checkRule(r, k, tierIndex, at, fields.authorization !== undefined));
  if (at.issues.length > before) return undefined;

  const rules = new IdentityRules(fields.rules, tierIndex);
  const tiers = buildTiers(fields.tiers, rules, at, file);
  if (at.issues.length > before) return undefined;

  const supply = compileSupplyChain(fields.supplyChain, file, at);
  const limits = compileLimits(fields.limits, at);
  if (at.issues.length > before) return undefined;

  loadReferenceGraph();
  // Without identity rules every request decides on the one table: no per-identity lookup.
  const decide = rules.indexes.length === 0 ? new Decider(rules.table(''), tiers).decide : new IdentityDecisions(rules, tiers).decide;
  return {
    file,
    digest,
    tiers,
    tierByName: new Map(tiers.map((t) => [t.name, t])),
    supplyChain: supply.supplyChain,
    warnings: [...warningsOf(file, fields, rules.entries(), tiers), ...supply.warnings],
    matchesCertificates: fields.rules.some((r) => r.certificates !== undefined),
    ...(fields.authorization ? { authorization: compileAuthorization(fields.authorization, file) } : {}),
    limits,
    decide,
  };
}
