// Options the privileged commands share (`fhirguard agent`, `fhirguard exec`): where the
// policy, profiles, database and state are, which runc, which users the proxy and the workers run as.

import path from 'node:path';
import type { OptionSpec } from '../cli/command';
import { IDENTITY_OPTIONS } from '../enforce/identities';
import { installRoot } from '../install/root';
import { DEFAULT_STATE_DIR, defaultDbPath } from '../enforce/layout';

export const ENFORCE_OPTIONS: Record<string, OptionSpec> = {
  policy: { type: 'string', env: 'FHIRGUARD_POLICY', arg: '<file>', help: 'policy file naming the tiers (default: the shipped profiles/policy.yaml)' },
  profiles: { type: 'string', env: 'FHIRGUARD_PROFILES', arg: '<dir>', help: 'directory holding seccomp/<tier>.json and ebpf/<tier>.json (default: the shipped profiles/)' },
  'state-dir': { type: 'string', env: 'FHIRGUARD_STATE_DIR', arg: '<dir>', default: DEFAULT_STATE_DIR, help: "root's state: runc state, bundles, worker sockets" },
  db: { type: 'string', env: 'FHIRGUARD_DB', arg: '<file>', help: 'the SQLite database every worker shares, in a directory of its own (default <state-dir>/data/fhirguard.db)' },
  runc: { type: 'string', env: 'FHIRGUARD_RUNC', arg: '<path>', help: 'the runc binary (default: found on PATH, /usr/sbin)' },
  ...IDENTITY_OPTIONS,
};

export interface EnforcePaths {
  policyFile: string;
  profilesDir: string;
  stateDir: string;
  db: string;
}

export function enforcePaths(values: Record<string, string | boolean | string[] | undefined>): EnforcePaths {
  const install = installRoot();
  const stateDir = path.resolve(String(values['state-dir'] ?? DEFAULT_STATE_DIR));
  return {
    policyFile: path.resolve(typeof values.policy === 'string' ? values.policy : path.join(install, 'profiles', 'policy.yaml')),
    profilesDir: path.resolve(typeof values.profiles === 'string' ? values.profiles : path.join(install, 'profiles')),
    stateDir,
    db: path.resolve(typeof values.db === 'string' ? values.db : defaultDbPath(stateDir)),
  };
}
