// Putting a changed policy file in force without a restart (SIGHUP, `fhirguard reload`, the
// admin listener's POST /reload). The new file is checked whole first: a policy with problems
// is refused with the same file:line:col messages as at start, and the old one stays. So is a
// policy that changes the tiers (tier-changes.ts): the pools and workers were made from them.
// A good one has its parts made (token check, CapabilityStatement) before the one assignment
// that puts it in force; requests in flight finish under the policy they started with.

import type { Logger } from 'pino';
import { OneAtATime } from '../agent-api/one-at-a-time';
import type { ReloadAnswer } from '../agent-api/reload';
import type { ProxyMetrics } from '../metrics/registry';
import { loadPolicy, PolicyError, type Policy } from '../policy';
import { tierChanges } from '../policy/tier-changes';
import type { PolicyParts } from './policy-generation';

export interface PolicyReloadOptions {
  file: string;
  server: { current(): PolicyParts; usePolicy(parts: PolicyParts): void };
  metrics: ProxyMetrics;
  log: Logger;
  /** Makes the new policy's parts; `retire` runs once they are in force. */
  parts(next: Policy, before: PolicyParts): Promise<{ parts: PolicyParts; retire(): void }>;
}

export class PolicyReload {
  private readonly serial = new OneAtATime();

  constructor(private readonly o: PolicyReloadOptions) {}

  reload(): Promise<ReloadAnswer> {
    return this.serial.run(() => this.once());
  }

  private async once(): Promise<ReloadAnswer> {
    const { log, metrics } = this.o;
    const before = this.o.server.current();
    const inForce = { file: this.o.file, digest: before.policy.digest };
    const refused = (error: string): ReloadAnswer => {
      metrics.policyReload('refused');
      log.error({ policy: this.o.file, digest: before.policy.digest }, `policy reload refused; the policy in force stays:\n${error}`);
      return { result: 'refused', error, policy: inForce };
    };
    let next: Policy;
    try {
      next = loadPolicy(this.o.file);
    } catch (err) {
      return refused(err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message);
    }
    if (next.digest === before.policy.digest) {
      metrics.policyReload('unchanged');
      log.info({ policy: this.o.file, digest: next.digest }, 'policy reload: the file is unchanged');
      return { result: 'unchanged', policy: inForce };
    }
    const changes = tierChanges(before.policy, next);
    if (changes.length > 0)
      return refused(`the new policy changes the tiers, which a reload cannot take (restart, or under \`fhirguard up\` roll the tier out):\n${changes.map((c) => `  ${c}`).join('\n')}`);
    let made: Awaited<ReturnType<PolicyReloadOptions['parts']>>;
    try {
      made = await this.o.parts(next, before);
    } catch (err) {
      return refused(`the new policy's parts could not be made: ${(err as Error).message}`);
    }
    this.o.server.usePolicy(made.parts);
    made.retire();
    metrics.policyInForce(next.digest);
    metrics.policyReload('applied');
    for (const w of next.warnings) log.warn({ policy: next.file }, `policy: ${w}`);
    log.info({ policy: this.o.file, digest: next.digest, previous: before.policy.digest }, 'policy in force');
    return { result: 'applied', policy: { file: this.o.file, digest: next.digest } };
  }
}
