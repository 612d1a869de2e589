// `fhirguard sign`: one signed statement per tier, binding what the tier's workers run (the
// image by its manifest digest, or the host install) to the digests of the tier's seccomp
// and eBPF profiles and the policy file: an in-toto statement in a DSSE envelope, signed
// with an Ed25519 key from `fhirguard keygen`, written to <attestations>/<tier>.dsse.json
// for the agent to check before every worker start.

import path from 'node:path';
import { ENFORCE_OPTIONS, enforcePaths } from '../agent/options';
import { installRoot } from '../install/root';
import { expiryOf } from '../policy/supply-chain';
import { loadPolicy, PolicyError, type TierConfig } from '../policy';
import { loadSigningKey, type SigningKey } from '../trust/keys';
import { attestationsDir, TRUST_OPTIONS } from '../trust/options';
import { signingSubject, signTier, tierSigningSubject, writeEnvelope, type SigningSubject } from '../trust/sign';
import type { Command } from './command';

const DURATION = /^(\d+)([smhd])$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--expires`: a date (through that day, UTC), an ISO 8601 date-time with zone, or a duration from now (90d, 12h, 30m, 10s). */
export function parseExpiry(text: string, now = Date.now()): string {
  const d = DURATION.exec(text);
  if (d) return new Date(now + Number(d[1]) * UNIT_MS[d[2]]).toISOString();
  if (!Number.isNaN(expiryOf(text))) return text;
  throw new Error(`--expires ${JSON.stringify(text)}: a date (2027-01-31), an ISO 8601 date-time with zone (2027-01-31T12:00:00Z) or a duration (90d, 12h, 30m, 10s)`);
}

class UsageError extends Error {}

export const signCommand: Command = {
  name: 'sign',
  summary: "sign each tier's statement: image (or install), seccomp and eBPF profiles, policy",
  usage: '--key <file> [--tier <name>]... [options]',
  options: {
    key: { type: 'string', env: 'FHIRGUARD_SIGNING_KEY', arg: '<file>', help: 'Ed25519 private key (PEM) from `fhirguard keygen`' },
    tier: { type: 'string', multiple: true, arg: '<name>', help: 'tier to sign (repeatable; default: every tier the agent runs)' },
    policy: ENFORCE_OPTIONS.policy,
    profiles: ENFORCE_OPTIONS.profiles,
    attestations: TRUST_OPTIONS.attestations,
    image: {
      type: 'string',
      env: 'FHIRGUARD_IMAGE',
      arg: '<layout>[:<tag>]',
      help: 'sign for workers run from this image (`fhirguard agent --image`): binds its manifest digest and its scan report, instead of the host install',
    },
    advisories: { type: 'string', env: 'FHIRGUARD_ADVISORIES', arg: '<dir>', help: 'with --image: the OSV advisory database the agent scans the image against' },
    expires: { type: 'string', arg: '<date|duration>', help: 'refuse starts after this: a date, an ISO 8601 date-time with zone, or 90d, 12h, 30m, 10s from now' },
  },
  details: [
    'Signs what this machine has now: the profiles and the policy file, and what the workers run:',
    'with --image, the image (its manifest digest; it is scanned as the agent scans it, and an',
    'image its scan gate refuses is not signed), else the install the agent starts workers from',
    '(node, dist/, node_modules/, bin/, package.json). Run it on what the agent will use, after',
    'reviewing the profiles. Each start of a worker of a signed tier then needs its statement to',
    'verify (`fhirguard agent --trusted-keys`); edit a profile or the policy and the tier is',
    'refused until it is signed again. Exit 0: signed; 1: not signed (key, image, files); 2: usage.',
  ].join('\n'),
  async run(values) {
    const say = (m: string): void => void process.stderr.write(`fhirguard sign: ${m}\n`);
    const paths = enforcePaths(values);
    let expires: string | undefined;
    let key: SigningKey;
    let tiers: TierConfig[];
    let what: SigningSubject;
    try {
      if (typeof values.key !== 'string') throw new UsageError('--key <file> is required (make one with `fhirguard keygen`)');
      if (typeof values.expires === 'string') {
        try {
          expires = parseExpiry(values.expires);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
      }
      const image = typeof values.image === 'string' && values.image !== '' ? values.image : undefined;
      const advisories = typeof values.advisories === 'string' && values.advisories !== '' ? path.resolve(values.advisories) : undefined;
      if (image && !advisories) throw new UsageError('--image needs --advisories <dir>: the statement binds the scan the agent will make');
      let policy;
      try {
        policy = loadPolicy(paths.policyFile);
      } catch (err) {
        throw new UsageError(err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message);
      }
      const local = policy.tiers.filter((t) => t.upstreams.length === 0);
      const asked = (values.tier as string[] | undefined) ?? [];
      for (const name of asked) {
        const t = policy.tierByName.get(name);
        if (!t) throw new UsageError(`${paths.policyFile} has no tier ${name} (tiers: ${policy.tiers.map((x) => x.name).join(', ')})`);
        if (t.upstreams.length) throw new UsageError(`tier ${name} is served by its upstreams, not by workers fhirguard starts: nothing to sign`);
      }
      tiers = asked.length ? local.filter((t) => asked.includes(t.name)) : local;
      if (!tiers.length) throw new UsageError(`${paths.policyFile}: no tier runs fhirguard's workers`);
      key = loadSigningKey(path.resolve(values.key));
      what = await signingSubject({ install: installRoot(), supplyChain: policy.supplyChain, ...(image && advisories ? { image: { ref: image, advisories } } : {}) });
    } catch (err) {
      say((err as Error).message);
      return err instanceof UsageError ? 2 : 1;
    }
    const out = attestationsDir(values, paths.profilesDir);
    try {
      for (const tier of tiers) {
        const { statement, envelope } = await signTier({ key, tier, profilesDir: paths.profilesDir, policyFile: paths.policyFile, ...tierSigningSubject(tier, what), expires });
        const file = writeEnvelope(out, tier.name, envelope);
        const p = statement.predicate;
        const s = statement.subject[0];
        const lines = [
          `${tier.name}: ${file}`,
          `  ${p.subjectKind} ${s.name} sha256:${s.digest.sha256}`,
          `  seccomp ${p.seccomp.name} sha256:${p.seccomp.digest.sha256}`,
          `  ebpf    ${p.ebpf.name} sha256:${p.ebpf.digest.sha256}`,
          `  policy  ${p.policy.name} sha256:${p.policy.digest.sha256}`,
          ...(p.scan ? [`  scan    sha256:${p.scan.digest.sha256}${p.scan.waivers.length ? `, waivers ${p.scan.waivers.map((w) => `${w.id} (until ${w.expires})`).join(', ')}` : ''}`] : []),
          `  key ${key.keyid}${expires ? `, expires ${expires}` : ''}`,
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }
    } catch (err) {
      say((err as Error).message);
      return 1;
    }
    return 0;
  },
};
