// A signing setup on disk for the trust unit tests: a copy of the shipped profiles and
// policy, a small install tree (the install subject without hashing the real one), an
// Ed25519 key pair, statements signed with it, and a trust gate over all of it.

import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Policy, TierConfig } from '../../src/policy';
import { TrustGate, type TrustGateOptions } from '../../src/trust/start-check';
import { loadSigningKey, loadTrustedKeys, writeKeyPair, type SigningKey } from '../../src/trust/keys';
import { loadPolicyHashed } from '../../src/trust/options';
import { signTier, writeEnvelope } from '../../src/trust/sign';
import type { Waiver } from '../../src/trust/statement';
import { InstallSubject, type SubjectSource } from '../../src/trust/subject';
import { REPO } from '../helpers/confined';

export interface Fixture {
  dir: string;
  profilesDir: string;
  policyFile: string;
  policy: Policy;
  policySha256: string;
  install: string;
  node: string;
  attestations: string;
  key: SigningKey;
  publicKey: string;
  tier(name: string): TierConfig;
  sign(tier: string, o?: { key?: SigningKey; subject?: SubjectSource; scan?: { sha256: string; waivers: Waiver[] }; expires?: string }): Promise<string>;
  gate(o?: Partial<TrustGateOptions>): TrustGate;
  subject: InstallSubject;
}

export const silent = pino({ level: 'silent' });

export async function makeFixture(dir: string, name = 'ops'): Promise<Fixture> {
  const profilesDir = path.join(dir, 'profiles');
  for (const kind of ['seccomp', 'ebpf']) cpSync(path.join(REPO, 'profiles', kind), path.join(profilesDir, kind), { recursive: true });
  const policyFile = path.join(dir, 'policy.yaml');
  cpSync(path.join(REPO, 'profiles', 'policy.yaml'), policyFile);
  const install = path.join(dir, 'install');
  for (const d of ['dist/src', 'node_modules/pkg', 'bin']) mkdirSync(path.join(install, d), { recursive: true });
  writeFileSync(path.join(install, 'dist/src/worker.js'), 'module.exports = 1;\n');
  writeFileSync(path.join(install, 'node_modules/pkg/index.js'), 'module.exports = 2;\n');
  writeFileSync(path.join(install, 'bin/fhirguard'), '#!/usr/bin/env node\n', { mode: 0o755 });
  writeFileSync(path.join(install, 'package.json'), '{"name":"fhirguard"}\n');
  const node = path.join(dir, 'node-binary');
  writeFileSync(node, 'not really node\n', { mode: 0o755 });
  const keys = writeKeyPair(path.join(dir, 'keys'), name);
  const key = loadSigningKey(keys.keyFile);
  const { policy, sha256: policySha256 } = loadPolicyHashed(policyFile);
  const attestations = path.join(dir, 'attestations');
  const subject = new InstallSubject(install, node);
  const tier = (n: string): TierConfig => policy.tierByName.get(n)!;
  return {
    dir,
    profilesDir,
    policyFile,
    policy,
    policySha256,
    install,
    node,
    attestations,
    key,
    publicKey: keys.publicFile,
    subject,
    tier,
    async sign(t, o = {}) {
      const { envelope } = await signTier({
        key: o.key ?? key,
        tier: tier(t),
        profilesDir,
        policyFile,
        subject: o.subject ?? subject,
        ...(o.scan ? { scan: o.scan } : {}),
        ...(o.expires ? { expires: o.expires } : {}),
      });
      return writeEnvelope(attestations, t, envelope);
    },
    gate(o = {}) {
      return new TrustGate({
        trustedKeys: loadTrustedKeys(keys.publicFile),
        attestations,
        profilesDir,
        policyFile,
        loadedPolicySha256: policySha256,
        subject,
        log: silent,
        ...o,
      });
    },
  };
}
