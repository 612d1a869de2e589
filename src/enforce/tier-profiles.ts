// A tier's confinement profiles, found by name in the profiles directory. A tier the
// shipped profiles do not name (an operator's own tier) gets the read profiles when it is
// read-only and the write profiles otherwise, and says so.

import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ebpfProfilePath, loadEbpfProfile, type EbpfProfile } from './ebpf-profile';
import { allowedSyscalls, loadSeccompProfile, seccompProfilePath, type SeccompProfile } from './seccomp';

export interface TierProfiles {
  seccomp: SeccompProfile;
  seccompFile: string;
  ebpf: EbpfProfile;
  ebpfFile: string;
  /** sha256 of the two files (for fhirguard_profile_info). */
  digest: string;
  /** Syscalls the seccomp profile allows under some condition. */
  seccompAllowed: string[];
  /** Set when the tier has no profiles of its own. */
  borrowedFrom?: string;
}

export function loadTierProfiles(profilesDir: string, tier: string, readOnly: boolean): TierProfiles {
  let name = tier;
  let borrowedFrom: string | undefined;
  if (!existsSync(seccompProfilePath(profilesDir, tier)) && !existsSync(ebpfProfilePath(profilesDir, tier))) {
    name = readOnly ? 'read' : 'write';
    borrowedFrom = name;
  }
  const seccompFile = seccompProfilePath(profilesDir, name);
  const ebpfFile = ebpfProfilePath(profilesDir, name);
  const seccomp = loadSeccompProfile(seccompFile);
  const ebpf = loadEbpfProfile(ebpfFile);
  const digest = createHash('sha256').update(readFileSync(seccompFile)).update(readFileSync(ebpfFile)).digest('hex');
  return { seccomp, seccompFile, ebpf, ebpfFile, digest, seccompAllowed: allowedSyscalls(seccomp), ...(borrowedFrom ? { borrowedFrom } : {}) };
}
