// What one tier's statement is about, read from disk once: the tier's seccomp and eBPF
// profile files and the policy file as bytes, their digests, and the profiles parsed from
// those same bytes (a verified start runs exactly what was hashed). `fhirguard sign` and
// the agent's check both read a tier through here, so they cannot disagree on what counts.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tierProfileFiles, tierProfilesFrom, type TierProfiles } from '../enforce/tier-profiles';
import { sha256 } from './digests';
import type { Artifact } from './statement';

export interface TierMaterials {
  tier: string;
  /** The profiles parsed from the bytes that were hashed (throws UnreadableMaterial). */
  profiles(): TierProfiles;
  seccomp: Artifact;
  ebpf: Artifact;
  policy: Artifact;
}

export class UnreadableMaterial extends Error {}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UnreadableMaterial(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function readTierMaterials(profilesDir: string, tier: { name: string; readOnly: boolean }, policyFile: string): TierMaterials {
  const files = tierProfileFiles(profilesDir, tier.name, tier.readOnly);
  const seccompBytes = read(files.seccompFile, 'seccomp profile');
  const ebpfBytes = read(files.ebpfFile, 'eBPF profile');
  const policyBytes = read(policyFile, 'policy file');
  const rel = (f: string): string => path.relative(profilesDir, f).split(path.sep).join('/');
  return {
    tier: tier.name,
    profiles: () => {
      try {
        return tierProfilesFrom(files, seccompBytes, ebpfBytes);
      } catch (err) {
        throw new UnreadableMaterial((err as Error).message);
      }
    },
    seccomp: { name: rel(files.seccompFile), digest: { sha256: sha256(seccompBytes) } },
    ebpf: { name: rel(files.ebpfFile), digest: { sha256: sha256(ebpfBytes) } },
    policy: { name: path.basename(policyFile), digest: { sha256: sha256(policyBytes) } },
  };
}
