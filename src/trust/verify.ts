// What the agent checks before each worker start, as one pure function over a verified
// statement and what is on disk now: the statement is for this tier, has not expired, names
// the subject the worker would run, the digests of the profiles and the policy it would run
// under, and no waiver it relies on has expired. The first mismatch is the refusal; its
// reason is one of a fixed set (a metric label).

import type { Subject, SubjectKind, TierStatement } from './statement';
import { timeOf } from './statement';
import type { TierMaterials } from './materials';
import type { RefusalReason } from './reasons';

export { REFUSAL_REASONS, type RefusalReason } from './reasons';

export interface Observed {
  tier: string;
  subject: Subject & { kind: SubjectKind };
  materials: Pick<TierMaterials, 'seccomp' | 'ebpf' | 'policy'>;
  /** sha256 of the policy bytes the agent compiled at start (it routes by that one). */
  loadedPolicy: string;
  /** sha256 of the image's scan report, when there is one. */
  scan?: string;
  now: number;
}

export interface Mismatch {
  reason: RefusalReason;
  message: string;
}

const short = (hex: string): string => hex.slice(0, 12);

export function checkStatement(st: TierStatement, o: Observed): Mismatch | null {
  const p = st.predicate;
  if (p.tier !== o.tier) return { reason: 'tier', message: `the statement is for tier ${p.tier}, not ${o.tier}` };
  if (p.expires !== undefined && timeOf(p.expires, 'expires') < o.now) return { reason: 'expired', message: `the statement expired at ${p.expires}` };
  const s = st.subject[0];
  if (p.subjectKind !== o.subject.kind) return { reason: 'subject', message: `the statement signs the ${p.subjectKind}, but workers run from the ${o.subject.kind}` };
  if (s.digest.sha256 !== o.subject.digest.sha256) {
    const what = o.subject.kind === 'image' ? `image ${o.subject.name}` : o.subject.kind === 'server' ? `server's files (${o.subject.name})` : 'install';
    return { reason: 'subject', message: `the ${what} is sha256:${short(o.subject.digest.sha256)}, the statement signs sha256:${short(s.digest.sha256)} (${s.name})` };
  }
  for (const k of ['seccomp', 'ebpf'] as const) {
    const now = o.materials[k];
    if (now.digest.sha256 !== p[k].digest.sha256) {
      return { reason: k, message: `the ${k === 'ebpf' ? 'eBPF' : 'seccomp'} profile ${now.name} is sha256:${short(now.digest.sha256)}, the statement signs sha256:${short(p[k].digest.sha256)}` };
    }
  }
  if (o.materials.policy.digest.sha256 !== p.policy.digest.sha256) {
    return {
      reason: 'policy',
      message: `the policy file ${o.materials.policy.name} is sha256:${short(o.materials.policy.digest.sha256)}, the statement signs sha256:${short(p.policy.digest.sha256)}`,
    };
  }
  if (o.loadedPolicy !== p.policy.digest.sha256) {
    return { reason: 'policy', message: `the agent runs a policy (sha256:${short(o.loadedPolicy)}) other than the signed one: restart it` };
  }
  if (o.scan !== undefined && p.scan?.digest.sha256 !== o.scan) {
    return {
      reason: 'scan-report',
      message: p.scan ? `the image's scan report is sha256:${short(o.scan)}, the statement signs sha256:${short(p.scan.digest.sha256)}` : 'the image has a scan report the statement does not sign',
    };
  }
  for (const w of p.scan?.waivers ?? []) {
    if (timeOf(w.expires, 'waiver') < o.now) return { reason: 'waiver-expired', message: `waiver ${w.id} expired at ${w.expires}` };
  }
  return null;
}
