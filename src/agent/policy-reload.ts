// A policy reload under the agent (`fhirguard reload`, `up` on SIGHUP): the agent holds the
// policy the tiers' workers, their signed statements and the confined front door's egress were
// made from, so it checks a new one before the front door sees it. Refused, with the old one
// kept: a policy with problems (file:line:col), one that changes the tiers or the token
// issuer's endpoints the front door may reach, one the tiers' signed statements do not cover.
// Then the front door is asked to put it in force, and only when it has does the agent route
// restarts by it.

import type { Logger } from 'pino';
import { OneAtATime } from '../agent-api/one-at-a-time';
import type { ReloadAnswer } from '../agent-api/reload';
import { loadPolicy, PolicyError, type Policy } from '../policy';
import { issuerChanges, tierChanges } from '../policy/tier-changes';
import type { TrustGate } from '../trust/start-check';

export interface AgentPolicyReloadOptions {
  /** The policy in force. */
  current(): Policy;
  /** The front door accepted `next`: the agent routes by it from now on. */
  commit(next: Policy): void;
  trust?: TrustGate;
  /** `up`'s own signing key: the tiers' statements are signed again for the new policy. */
  resign?(next: Policy): Promise<void>;
  /** Puts the file in force in the front door (the agent's confined one, or `up`'s proxy); absent: none runs. */
  frontDoor?(): Promise<ReloadAnswer>;
  /** The front door is confined: its eBPF egress was made from the token issuer's endpoints. */
  confinedEgress: boolean;
  log: Logger;
}

export class AgentPolicyReload {
  private readonly serial = new OneAtATime();

  constructor(private readonly o: AgentPolicyReloadOptions) {}

  reload(): Promise<ReloadAnswer> {
    return this.serial.run(() => this.once());
  }

  private async once(): Promise<ReloadAnswer> {
    const before = this.o.current();
    const inForce = { file: before.file, digest: before.digest };
    const refused = (error: string): ReloadAnswer => {
      this.o.log.error({ policy: before.file, digest: before.digest }, `policy reload refused; the policy in force stays:\n${error}`);
      return { result: 'refused', error, policy: inForce };
    };
    let next: Policy;
    try {
      next = loadPolicy(before.file);
    } catch (err) {
      return refused(err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message);
    }
    if (next.digest === before.digest) return { result: 'unchanged', policy: inForce };
    const changes = [...tierChanges(before, next), ...(this.o.confinedEgress ? issuerChanges(before, next) : [])];
    if (changes.length > 0) {
      return refused(
        `the new policy changes what the agent made workers and the front door from, which a reload cannot take (restart up, or roll a tier out with \`fhirguard rollout\`):\n${changes.map((c) => `  ${c}`).join('\n')}`,
      );
    }
    try {
      await this.o.resign?.(next);
    } catch (err) {
      return refused(`signing the tiers for the new policy failed: ${(err as Error).message}`);
    }
    if (this.o.trust) {
      const hex = next.digest.replace(/^sha256:/, '');
      for (const tier of next.tiers.filter((t) => t.upstreams.length === 0)) {
        const why = await this.o.trust.refusalUnder(tier, hex);
        if (why) return refused(`the tiers' signed statements do not cover the new policy, so no worker could start under it: ${why}\nsign it (\`fhirguard sign\`) and reload`);
      }
    }
    const answer = (await this.o.frontDoor?.().catch((err: Error): ReloadAnswer => ({ result: 'refused', error: `the front door could not be asked: ${err.message}`, policy: inForce }))) ?? {
      result: 'applied',
      policy: { file: next.file, digest: next.digest },
    };
    if (answer.result === 'refused') return refused(`the front door refused it: ${answer.error}`);
    if (answer.policy.digest !== next.digest) return refused(`the front door put ${answer.policy.digest} in force, not ${next.digest}: the file changed during the reload; reload again`);
    this.o.commit(next);
    this.o.trust?.policyInForce(next.digest.replace(/^sha256:/, ''));
    this.o.log.info({ policy: next.file, digest: next.digest, previous: before.digest }, 'policy in force');
    return { result: 'applied', policy: { file: next.file, digest: next.digest } };
  }
}
