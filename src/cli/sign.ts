// `fhirguard sign`: one signed statement per tier, binding what the tier's workers run (the
// image, or the host install) to the digests of the tier's seccomp and eBPF profiles and the
// policy file: an in-toto statement in a DSSE envelope, signed with an Ed25519 key from
// `fhirguard keygen`, written to <attestations>/<tier>.dsse.json for the agent to check
// before every worker start.

import path from 'node:path';
import { ENFORCE_OPTIONS, enforcePaths } from '../agent/options';
import { installRoot } from '../enforce/install-root';
import { loadPolicy, PolicyError, type TierConfig } from '../policy';
import { loadSigningKey } from '../trust/keys';
import { attestationsDir, TRUST_OPTIONS } from '../trust/options';
import { signTier, writeEnvelope } from '../trust/sign';
import { InstallSubject } from '../trust/subject';
import type { Command } from './command';

const DURATION = /^(\d+)([smhd])$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--expires`: an ISO 8601 date or date-time, or a duration from now (90d, 12h, 30m, 10s). */
export function parseExpiry(text: string, now = Date.now()): string {
  const d = DURATION.exec(text);
  if (d) return new Date(now + Number(d[1]) * UNIT_MS[d[2]]).toISOString();
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) && !Number.isNaN(Date.parse(text))) return text;
  throw new Error(`--expires ${JSON.stringify(text)}: an ISO 8601 date (2027-01-31, 2027-01-31T12:00:00Z) or a duration (90d, 12h, 30m, 10s)`);
}

export const signCommand: Command = {
  name: 'sign',
  summary: "sign each tier's statement: image or install, seccomp and eBPF profiles, policy",
  usage: '--key <file> [--tier <name>]... [options]',
  options: {
    key: { type: 'string', env: 'FHIRGUARD_SIGNING_KEY', arg: '<file>', help: 'Ed25519 private key (PEM) from `fhirguard keygen`' },
    tier: { type: 'string', multiple: true, arg: '<name>', help: 'tier to sign (repeatable; default: every tier the agent runs)' },
    policy: ENFORCE_OPTIONS.policy,
    profiles: ENFORCE_OPTIONS.profiles,
    attestations: TRUST_OPTIONS.attestations,
    expires: { type: 'string', arg: '<date|duration>', help: 'refuse starts after this: ISO 8601 date or date-time, or 90d, 12h, 30m, 10s from now' },
  },
  details: [
    'Signs what this machine has now: the profiles and policy files, and the install the agent',
    'starts workers from (node, dist/, node_modules/, bin/, package.json), so run it on the install',
    'the agent will use, after reviewing the profiles. Each start of a worker of a signed tier',
    'then needs its statement to verify (`fhirguard agent --trusted-keys`); edit a profile or the',
    'policy and the tier is refused until it is signed again.',
  ].join('\n'),
  async run(values) {
    const say = (m: string): void => void process.stderr.write(`fhirguard sign: ${m}\n`);
    if (typeof values.key !== 'string') {
      say('--key <file> is required (make one with `fhirguard keygen`)');
      return 2;
    }
    const paths = enforcePaths(values);
    let expires: string | undefined;
    let key;
    let tiers: TierConfig[];
    try {
      if (typeof values.expires === 'string') expires = parseExpiry(values.expires);
      key = loadSigningKey(path.resolve(values.key));
      const policy = loadPolicy(paths.policyFile);
      const local = policy.tiers.filter((t) => t.upstreams.length === 0);
      const asked = (values.tier as string[] | undefined) ?? [];
      for (const name of asked) {
        const t = policy.tierByName.get(name);
        if (!t) throw new Error(`${paths.policyFile} has no tier ${name} (tiers: ${policy.tiers.map((x) => x.name).join(', ')})`);
        if (t.upstreams.length) throw new Error(`tier ${name} is served by its upstreams, not by workers fhirguard starts: nothing to sign`);
      }
      tiers = asked.length ? local.filter((t) => asked.includes(t.name)) : local;
      if (!tiers.length) throw new Error(`${paths.policyFile}: no tier runs fhirguard's workers`);
    } catch (err) {
      say(err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message);
      return 2;
    }
    const out = attestationsDir(values, paths.profilesDir);
    const subject = new InstallSubject(installRoot());
    try {
      for (const tier of tiers) {
        const { statement, envelope } = await signTier({ key, tier, profilesDir: paths.profilesDir, policyFile: paths.policyFile, subject, expires });
        const file = writeEnvelope(out, tier.name, envelope);
        const p = statement.predicate;
        const s = statement.subject[0];
        process.stdout.write(
          `${tier.name}: ${file}\n  ${p.subjectKind} ${s.name} sha256:${s.digest.sha256}\n  seccomp ${p.seccomp.name} sha256:${p.seccomp.digest.sha256}\n  ebpf    ${p.ebpf.name} sha256:${p.ebpf.digest.sha256}\n  policy  ${p.policy.name} sha256:${p.policy.digest.sha256}\n  key ${key.keyid}${expires ? `, expires ${expires}` : ''}\n`,
        );
      }
    } catch (err) {
      say((err as Error).message);
      return 1;
    }
    return 0;
  },
};
