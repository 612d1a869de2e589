// Making a tier's signed statement: read the tier's materials and the subject as the agent
// will (materials.ts, subject.ts), build the in-toto statement, sign it into a DSSE envelope,
// and write <attestations>/<tier>.dsse.json atomically (a start never reads half a file).

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { signEnvelope, type DsseEnvelope } from './dsse';
import { statementPath } from './gate';
import type { SigningKey } from './keys';
import { readTierMaterials } from './materials';
import { buildStatement, PAYLOAD_TYPE, type TierStatement, type Waiver } from './statement';
import type { SubjectSource } from './subject';

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
