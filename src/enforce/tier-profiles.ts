// A tier's confinement profiles, found by name in the profiles directory. A tier the
// shipped profiles do not name (an operator's own tier) gets the read profiles when it is
// read-only and the write profiles otherwise, and says so.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ebpfProfilePath, EbpfProfileError, parseEbpfProfile, type EbpfProfile } from './ebpf-profile';
import { allowedSyscalls, parseSeccompProfile, SeccompProfileError, seccompProfilePath, type SeccompProfile } from './seccomp';

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

export interface TierProfileFiles {
  seccompFile: string;
  ebpfFile: string;
  borrowedFrom?: string;
}

/** Which files hold a tier's profiles (its own, or the read/write ones it borrows). */
export function tierProfileFiles(profilesDir: string, tier: string, readOnly: boolean): TierProfileFiles {
  let name = tier;
  let borrowedFrom: string | undefined;
  if (!existsSync(seccompProfilePath(profilesDir, tier)) && !existsSync(ebpfProfilePath(profilesDir, tier))) {
    name = readOnly ? 'read' : 'write';
    borrowedFrom = name;
  }
  return { seccompFile: seccompProfilePath(profilesDir, name), ebpfFile: ebpfProfilePath(profilesDir, name), ...(borrowedFrom ? { borrowedFrom } : {}) };
}

function parseJson<E extends Error>(bytes: Buffer, file: string, Err: new (m: string) => E): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Err(`${file}: ${(err as Error).message}`);
  }
}

/** The profiles parsed from exactly these bytes (what a verified start hashed is what it runs). */
export function tierProfilesFrom(files: TierProfileFiles, seccompBytes: Buffer, ebpfBytes: Buffer): TierProfiles {
  const { seccompFile, ebpfFile, borrowedFrom } = files;
  const seccomp = parseSeccompProfile(parseJson(seccompBytes, seccompFile, SeccompProfileError), seccompFile);
  const ebpf = parseEbpfProfile(parseJson(ebpfBytes, ebpfFile, EbpfProfileError), ebpfFile);
  const digest = createHash('sha256').update(seccompBytes).update(ebpfBytes).digest('hex');
  return { seccomp, seccompFile, ebpf, ebpfFile, digest, seccompAllowed: allowedSyscalls(seccomp), ...(borrowedFrom ? { borrowedFrom } : {}) };
}

export function loadTierProfiles(profilesDir: string, tier: string, readOnly: boolean): TierProfiles {
  const files = tierProfileFiles(profilesDir, tier, readOnly);
  return tierProfilesFrom(files, readFileSync(files.seccompFile), readFileSync(files.ebpfFile));
}
