// The check before every worker start (restarts included), between the supervisor and the
// launcher: the tier's statement must carry a signature valid under a trusted key, and say
// what is on disk now (checkStatement). The profiles the worker then runs under are parsed
// from the very bytes that were hashed. Any failure refuses the start (StartRefusedError:
// the supervisor keeps the slot 'refused' and checks again later), is logged with the
// reason, counted per tier and reason, and reported on GET /enforcement.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StartRefusedError, type WorkerHandle, type WorkerLauncher, type WorkerSlot } from '../agent/launchers';
import type { TierProfiles } from '../enforce/tier-profiles';
import type { TierConfig } from '../policy';
import { EnvelopeError, parseEnvelope, verifyEnvelope } from './dsse';
import type { TrustedKey } from './keys';
import { readTierMaterials, UnreadableMaterial } from './materials';
import { PAYLOAD_TYPE, parseStatement, StatementError, type Subject } from './statement';
import { ServerSubject, type SubjectSource } from './subject';
import { checkStatement, type RefusalReason } from './verify';

export class TrustRefusal extends StartRefusedError {
  constructor(
    readonly tier: string,
    override readonly reason: RefusalReason,
    message: string,
  ) {
    super(reason, message, 'trust');
  }
}

export interface TrustGateOptions {
  trustedKeys: readonly TrustedKey[];
  /** Directory of <tier>.dsse.json envelopes. */
  attestations: string;
  profilesDir: string;
  policyFile: string;
  /** sha256 of the policy bytes the agent compiled. */
  loadedPolicySha256: string;
  subject: SubjectSource;
  /** sha256 of the image's current scan report, when the image has one. */
  scanDigest?: () => Promise<string | undefined>;
  log: Logger;
  now?: () => number;
}

/** A tier's trust as GET /enforcement reports it. */
export interface TierTrust {
  status: 'pending' | 'verified' | 'refused';
  reason?: RefusalReason;
  message?: string;
  /** The key whose signature verified, the subject the statement names. */
  keyid?: string;
  subject?: Subject & { kind: string };
  checkedAt?: string;
  /** Refused starts so far, by reason. */
  refusals: Partial<Record<RefusalReason, number>>;
}

export function statementPath(attestations: string, tier: string): string {
  return path.join(attestations, `${tier}.dsse.json`);
}

export class TrustGate {
  private readonly state = new Map<string, TierTrust>();
  private loadedPolicy: string;

  constructor(readonly o: TrustGateOptions) {
    this.loadedPolicy = o.loadedPolicySha256;
  }

  /** A reloaded policy is now the one the agent routes by (sha256 hex of its bytes). */
  policyInForce(sha256: string): void {
    this.loadedPolicy = sha256;
  }

  /** Why a start of the tier would be refused were `policySha256` the policy loaded; undefined: it would pass. */
  async refusalUnder(tier: TierConfig, policySha256: string): Promise<string | undefined> {
    try {
      await this.check(tier, policySha256);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  report(tier: string): TierTrust {
    return this.state.get(tier) ?? { status: 'pending', refusals: {} };
  }

  /** Checks the tier now; resolves with the profiles to run, or throws TrustRefusal. */
  async admit(tier: TierConfig): Promise<TierProfiles> {
    const t = this.report(tier.name);
    try {
      const ok = await this.check(tier, this.loadedPolicy);
      if (t.status !== 'verified') {
        this.o.log.info({ tier: tier.name, keyid: ok.keyid, subject: ok.subject }, `tier ${tier.name}: signed statement verified (${ok.subject.kind} sha256:${ok.subject.digest.sha256.slice(0, 12)})`);
      }
      this.state.set(tier.name, { status: 'verified', keyid: ok.keyid, subject: ok.subject, checkedAt: new Date().toISOString(), refusals: t.refusals });
      return ok.profiles;
    } catch (err) {
      const refusal = err instanceof TrustRefusal ? err : new TrustRefusal(tier.name, 'unreadable', `checking tier ${tier.name} failed: ${(err as Error).message}`);
      const refusals = { ...t.refusals, [refusal.reason]: (t.refusals[refusal.reason] ?? 0) + 1 };
      this.state.set(tier.name, { status: 'refused', reason: refusal.reason, message: refusal.message, checkedAt: new Date().toISOString(), refusals });
      throw refusal;
    }
  }

  private async check(tier: TierConfig, loadedPolicy: string): Promise<{ profiles: TierProfiles; keyid: string; subject: Subject & { kind: string } }> {
    const refuse = (reason: RefusalReason, message: string): never => {
      throw new TrustRefusal(tier.name, reason, message);
    };
    const file = statementPath(this.o.attestations, tier.name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return refuse(code === 'ENOENT' ? 'unsigned' : 'unreadable', code === 'ENOENT' ? `tier ${tier.name} is not signed: no ${file}` : `cannot read ${file}: ${code}`);
    }
    let verified;
    try {
      const env = parseEnvelope(text);
      if (env.payloadType !== PAYLOAD_TYPE) refuse('malformed', `${file}: payloadType ${JSON.stringify(env.payloadType)}, not ${PAYLOAD_TYPE}`);
      verified = verifyEnvelope(env, this.o.trustedKeys);
    } catch (err) {
      if (err instanceof EnvelopeError) refuse('malformed', `${file}: not a DSSE envelope: ${err.message}`);
      throw err;
    }
    if (!verified) return refuse('signature', `${file}: no signature verifies under a trusted key (${this.o.trustedKeys.length} trusted)`);
    let statement;
    try {
      statement = parseStatement(verified.payload);
    } catch (err) {
      if (err instanceof StatementError) refuse('malformed', `${file}: ${err.message}`);
      throw err;
    }
    let materials;
    try {
      materials = readTierMaterials(this.o.profilesDir, tier, this.o.policyFile);
    } catch (err) {
      if (err instanceof UnreadableMaterial) refuse('unreadable', err.message);
      throw err;
    }
    // A tier an operator's server serves runs that server's files, not the install or image.
    const source = tier.server ? new ServerSubject(tier.name, tier.server) : this.o.subject;
    let subject: Subject & { kind: string };
    try {
      subject = { ...(await source.current()), kind: source.kind };
    } catch (err) {
      return refuse('unreadable', (err as Error).message);
    }
    const mismatch = checkStatement(statement, {
      tier: tier.name,
      subject: subject as Subject & { kind: 'image' | 'install' | 'server' },
      materials,
      loadedPolicy,
      scan: tier.server ? undefined : await this.o.scanDigest?.(),
      now: (this.o.now ?? Date.now)(),
    });
    if (mismatch) refuse(mismatch.reason, mismatch.message);
    let profiles: TierProfiles;
    try {
      profiles = materials.profiles();
    } catch (err) {
      return refuse('unreadable', (err as Error).message);
    }
    return { profiles, keyid: verified.key.keyid, subject };
  }
}

/** A launcher that starts a worker only after its tier passed the gate, under the profiles checked. */
export class VerifyingLauncher implements WorkerLauncher {
  constructor(
    private readonly inner: WorkerLauncher,
    private readonly gate: TrustGate,
  ) {}

  get kind(): WorkerLauncher['kind'] {
    return this.inner.kind;
  }

  async launch(slot: WorkerSlot): Promise<WorkerHandle> {
    const profiles = await this.gate.admit(slot.tier);
    return this.inner.launch(slot, profiles);
  }
}
