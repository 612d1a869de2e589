// `fhirguard up` checks signed statements by default: it keeps a key pair of its own in
// <state-dir>/trust (made on the first run: the private key 0600 in a 0700 directory) and,
// at every start, signs each of its tiers' statements for what is on disk then (profiles,
// policy, and the install or the image). Its agent then verifies every worker start against
// them: a profile, the policy, the install or the image changed while the system runs
// refuses the next start (a restart after a crash, a kill, a failed health check) of that
// tier's workers, instead of running them under what nobody started them with.

import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Policy } from '../policy';
import { loadSigningKey, loadTrustedKeys, writeKeyPair } from './keys';
import { signingSubject, signTier, tierSigningSubject, writeEnvelope } from './sign';
import { installCacheFile } from './subject';

export interface SelfSignOptions {
  stateDir: string;
  policy: Policy;
  policyFile: string;
  profilesDir: string;
  install: string;
  image?: { ref: string; advisories: string };
}

export interface SelfSigned {
  /** The public key the agent trusts (--trusted-keys). */
  publicKey: string;
  /** Where the statements are (--attestations). */
  attestations: string;
  keyid: string;
  created: boolean;
  tiers: string[];
}

export const SELF_SIGN_KEY = 'up';

export async function selfSign(o: SelfSignOptions): Promise<SelfSigned> {
  const dir = path.join(o.stateDir, 'trust');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keyFile = path.join(dir, `${SELF_SIGN_KEY}.key`);
  const publicKey = path.join(dir, `${SELF_SIGN_KEY}.pub`);
  let created = false;
  if (!existsSync(keyFile) && !existsSync(publicKey)) {
    writeKeyPair(dir, SELF_SIGN_KEY);
    created = true;
  }
  const key = loadSigningKey(keyFile);
  if (!loadTrustedKeys(publicKey).some((k) => k.keyid === key.keyid)) {
    throw new Error(`${publicKey} is not the public key of ${keyFile}: remove both to make a new pair`);
  }
  const attestations = path.join(dir, 'attestations');
  const what = await signingSubject({ install: o.install, installCache: installCacheFile(o.stateDir), supplyChain: o.policy.supplyChain, ...(o.image ? { image: o.image } : {}) });
  const tiers = o.policy.tiers.filter((t) => t.upstreams.length === 0);
  for (const tier of tiers) {
    const { envelope } = await signTier({ key, tier, profilesDir: o.profilesDir, policyFile: o.policyFile, ...tierSigningSubject(tier, what) });
    writeEnvelope(attestations, tier.name, envelope);
  }
  return { publicKey, attestations, keyid: key.keyid, created, tiers: tiers.map((t) => t.name) };
}
