// Making a tier's signed statement: read the tier's materials and the subject as the agent
// will (materials.ts, subject.ts), build the in-toto statement, sign it into a DSSE envelope,
// and write <attestations>/<tier>.dsse.json atomically (a start never reads half a file).
// With an image, the image is scanned first as the agent scans it (same advisories, same
// policy): the statement binds the scan report's digest and the waivers it relies on, and
// an image the scan gate refuses now is not signed.

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { describeDecision } from '../image/scan-gate';
import { gateScan, scanImage } from '../image/scan';
import { toolVersion } from '../image/tool';
import type { SupplyChainPolicy } from '../policy';
import { signEnvelope, type DsseEnvelope } from './dsse';
import { statementPath } from './start-check';
import type { SigningKey } from './keys';
import { readTierMaterials } from './materials';
import { buildStatement, PAYLOAD_TYPE, type Subject, type TierStatement, type Waiver } from './statement';
import { ImageSubject, InstallSubject, ServerSubject, type SubjectSource } from './subject';
import type { TierConfig } from '../policy';

export interface SignRequest {
  key: SigningKey;
  tier: { name: string; readOnly: boolean };
  profilesDir: string;
  policyFile: string;
  subject: SubjectSource;
  /** ISO date or date-time after which starts are refused. */
  expires?: string;
  /** The image's scan report and the waivers its gate relied on. */
  scan?: { sha256: string; waivers: Waiver[] };
  now?: Date;
}

export async function signTier(r: SignRequest): Promise<{ statement: TierStatement; envelope: DsseEnvelope }> {
  const m = readTierMaterials(r.profilesDir, r.tier, r.policyFile);
  m.profiles(); // a profile that would not load is not worth signing
  const statement = buildStatement(await r.subject.current(), {
    tier: r.tier.name,
    subjectKind: r.subject.kind,
    seccomp: m.seccomp,
    ebpf: m.ebpf,
    policy: m.policy,
    ...(r.scan ? { scan: { digest: { sha256: r.scan.sha256 }, waivers: r.scan.waivers } } : {}),
    signedAt: (r.now ?? new Date()).toISOString(),
    ...(r.expires ? { expires: r.expires } : {}),
  });
  const envelope = signEnvelope(Buffer.from(JSON.stringify(statement)), PAYLOAD_TYPE, r.key);
  return { statement, envelope };
}

export function writeEnvelope(attestations: string, tier: string, envelope: DsseEnvelope): string {
  mkdirSync(attestations, { recursive: true });
  const file = statementPath(attestations, tier);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(envelope, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
  return file;
}

/**
 * A subject digested once, on first use: every statement of one signing run names the same
 * snapshot, and the install's 18k files are walked once rather than once per tier.
 */
function snapshot(source: SubjectSource): SubjectSource {
  let subject: Promise<Subject> | undefined;
  return { kind: source.kind, current: () => (subject ??= source.current()) };
}

/** What `fhirguard sign` (and `fhirguard up`) sign for: the image, scanned now, or the install. */
export interface SigningSubject {
  subject: SubjectSource;
  scan?: { sha256: string; waivers: Waiver[] };
}

export class SignRefusal extends Error {}

/**
 * The subject statements are signed for. With an image: resolved and scanned against
 * `advisories` under the policy's gate, as the agent will; throws SignRefusal when the gate
 * refuses the image now.
 */
export async function signingSubject(o: {
  install: string;
  /** The install digest's stat cache (`fhirguard up` shares its agent's). */
  installCache?: string;
  image?: { ref: string; advisories: string };
  supplyChain: SupplyChainPolicy;
  now?: number;
}): Promise<SigningSubject> {
  if (!o.image) return { subject: snapshot(new InstallSubject(o.install, undefined, o.installCache)) };
  const scan = await scanImage({ image: o.image.ref, advisories: o.image.advisories, policy: o.supplyChain, tool: toolVersion() });
  const d = gateScan(scan, o.supplyChain, o.now ?? Date.now());
  if (d.refused) throw new SignRefusal(`not signing: ${describeDecision(d, `${o.image.ref} (${scan.image.digest})`)}`);
  return {
    subject: snapshot(new ImageSubject(o.image.ref, async () => scan.image.digest)),
    scan: { sha256: scan.reportDigest, waivers: scan.report.waivers.map((w) => ({ id: w.id, ...(w.package ? { package: w.package } : {}), expires: w.expires, reason: w.reason })) },
  };
}

/** What one tier's statement signs: the tier's own server's files, else the install or image. */
export function tierSigningSubject(tier: TierConfig, what: SigningSubject): SigningSubject {
  return tier.server ? { subject: new ServerSubject(tier.name, tier.server) } : what;
}
