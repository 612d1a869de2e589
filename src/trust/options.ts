// The trust options `fhirguard agent` and `fhirguard up` share, and turning them into the
// agent's gate: trusted keys (a PEM file or a directory of them), the statements' directory,
// and the subject workers run (the host install until an image is given).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { OptionSpec } from '../cli/command';
import { compilePolicy, loadPolicy, type Policy } from '../policy';
import { sha256 } from './digests';
import { TrustGate } from './start-check';
import { loadTrustedKeys } from './keys';
import type { WorkerImage } from '../image/worker-image';
import { imageSubject, installCacheFile, InstallSubject } from './subject';

export const TRUST_OPTIONS: Record<string, OptionSpec> = {
  'trusted-keys': {
    type: 'string',
    env: 'FHIRGUARD_TRUSTED_KEYS',
    arg: '<file|dir>',
    help: 'Ed25519 public keys (PEM; a file, or a directory of *.pem/*.pub) whose signed statements a worker start needs; without it nothing is checked',
  },
  attestations: {
    type: 'string',
    env: 'FHIRGUARD_ATTESTATIONS',
    arg: '<dir>',
    help: 'where the signed statements are, one <tier>.dsse.json per tier (default <profiles>/attestations)',
  },
};

export function attestationsDir(values: Record<string, unknown>, profilesDir: string): string {
  return path.resolve(typeof values.attestations === 'string' ? values.attestations : path.join(profilesDir, 'attestations'));
}

/** The policy compiled from the bytes that were hashed: the agent routes by what it checks. */
export function loadPolicyHashed(file: string): { policy: Policy; sha256: string } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return { policy: loadPolicy(file), sha256: '' }; // throws the PolicyError naming the file
  }
  return { policy: compilePolicy(bytes.toString('utf8'), file), sha256: sha256(bytes) };
}

export interface TrustSetup {
  values: Record<string, unknown>;
  profilesDir: string;
  policyFile: string;
  policySha256: string;
  install: string;
  /** The agent's state directory (the install digest's stat cache is kept there). */
  stateDir?: string;
  log: Logger;
  /** The image workers run, when there is one: the subject is then the image (its manifest
   * digest) and its scan report is bound too; else the install is the subject. */
  image?: WorkerImage;
}

/** The agent's gate, or undefined when no trusted keys were given (nothing is checked). */
export function trustGateFrom(s: TrustSetup): TrustGate | undefined {
  const where = s.values['trusted-keys'];
  if (typeof where !== 'string' || where === '') return undefined;
  const trustedKeys = loadTrustedKeys(path.resolve(where));
  const attestations = attestationsDir(s.values, s.profilesDir);
  const what = s.image ? imageSubject(s.image) : { subject: new InstallSubject(s.install, undefined, s.stateDir ? installCacheFile(s.stateDir) : undefined) };
  s.log.info(
    { keys: trustedKeys.map((k) => ({ keyid: k.keyid, file: k.file })), attestations, subject: what.subject.kind },
    `worker starts need a signed statement per tier: ${trustedKeys.length} trusted key(s), statements in ${attestations}`,
  );
  return new TrustGate({ trustedKeys, attestations, profilesDir: s.profilesDir, policyFile: s.policyFile, loadedPolicySha256: s.policySha256, log: s.log, ...what });
}
