// What a tier's workers run: its profiles directory, its image (if any) and, when the agent
// checks signatures, the trust gate that admits each start. The agent starts with one such
// set per tier; `fhirguard rollout` builds the next one from the current set and what the
// operator changed, then starts the new workers through exactly the launchers every other
// start goes through (image gate, signature check, container, eBPF policy).

import path from 'node:path';
import type { Logger } from 'pino';
import type { EnforcementContext } from '../enforce/launch';
import type { Identities } from '../enforce/identities';
import { loadTierProfiles, type TierProfiles } from '../enforce/tier-profiles';
import { workerImageFrom } from '../image/options';
import type { WorkerImage } from '../image/worker-image';
import type { Policy, TierConfig } from '../policy';
import { TrustGate, VerifyingLauncher } from '../trust/start-check';
import { imageSubject } from '../trust/subject';
import { ContainerLauncher, ProcessLauncher, type WorkerCommand, type WorkerLauncher } from './launchers';
import { ServerLauncher } from './server-launcher';

/** What the agent was started with, the same for every generation. */
export interface LaunchEnv {
  ctx: EnforcementContext | null;
  cmd: WorkerCommand;
  /** The kernel takes eBPF policies. */
  ebpf: boolean;
  /** Plain-process workers run as their tier class's identity (the agent is root), else as the agent. */
  processIdentities: Identities | null;
  /** Who servers (policy `server:`) run as: the tier class's identity, the agent's own when not root. */
  identities: Identities;
  /** Where servers' output goes, one log file per worker. */
  logDir: string;
  /** Server tiers run to be recorded (`fhirguard record --server`): everything allowed and logged. */
  recordTiers?: ReadonlySet<string>;
  policy: Policy;
  stateDir: string;
  log: Logger;
}

/** One tier's artifacts: what its workers run. */
export interface TierArtifacts {
  profilesDir: string;
  profiles: TierProfiles;
  image?: WorkerImage;
  trust?: TrustGate;
}

/** What a rollout changes; unset fields keep the tier's current artifacts. */
export interface ArtifactChange {
  profilesDir?: string;
  image?: string;
  advisories?: string;
  attestations?: string;
}

/** The launcher every start of a worker with these artifacts goes through. */
export function launcherOf(env: LaunchEnv, tier: TierConfig, a: TierArtifacts): WorkerLauncher {
  const server = tier.server;
  const confined: WorkerLauncher = server
    ? new ServerLauncher(
        { ctx: env.ctx, identities: env.identities, root: env.processIdentities !== null, ebpf: env.ebpf, logDir: env.logDir },
        { ...tier, server },
        a.profiles,
        env.recordTiers?.has(tier.name) ? 'record' : tier.mode,
      )
    : env.ctx
      ? new ContainerLauncher(env.ctx, env.cmd, new Map([[tier.name, a.profiles]]), env.ebpf, a.image)
      : new ProcessLauncher(env.cmd, env.processIdentities);
  return a.trust ? new VerifyingLauncher(confined, a.trust) : confined;
}

/**
 * The tier's next artifacts: profiles loaded (and so parsed and checked) from the new
 * directory, a new image resolved and scanned, a trust gate over the new directory and
 * image. Throws with the reason when any of them cannot be read; whether a worker may start
 * from them (image gate, signature) is decided at each start, as always.
 */
export async function nextArtifacts(env: LaunchEnv, tier: TierConfig, cur: TierArtifacts, change: ArtifactChange): Promise<TierArtifacts> {
  const profilesDir = change.profilesDir ? path.resolve(change.profilesDir) : cur.profilesDir;
  const profiles = loadTierProfiles(profilesDir, tier.name, tier.readOnly);
  let image = cur.image;
  if (change.image) {
    if (!env.ctx) throw new Error('--image runs workers in containers, which this host cannot run');
    const advisories = change.advisories ?? cur.image?.o.advisories;
    image = workerImageFrom({ image: change.image, advisories }, { policy: env.policy, stateDir: env.stateDir, log: env.log });
    await image!.prepare();
  }
  let trust = cur.trust;
  if (trust && (change.profilesDir || change.image || change.attestations)) {
    const o = trust.o;
    const img = image;
    trust = new TrustGate({
      ...o,
      profilesDir,
      // A new profiles directory brings its own statements unless told otherwise.
      attestations: change.attestations ? path.resolve(change.attestations) : change.profilesDir ? path.join(profilesDir, 'attestations') : o.attestations,
      ...(change.image && img ? imageSubject(img) : {}),
    });
  }
  return { profilesDir, profiles, ...(image ? { image } : {}), ...(trust ? { trust } : {}) };
}

/** One line on what a generation runs, for logs and the operator. */
export function describeArtifacts(a: TierArtifacts): string {
  const parts = [`profiles ${a.profilesDir} (sha256:${a.profiles.digest.slice(0, 12)})`];
  if (a.image) parts.push(`image ${a.image.o.ref}`);
  if (a.trust) parts.push(`signed statements in ${a.trust.o.attestations}`);
  return parts.join(', ');
}
