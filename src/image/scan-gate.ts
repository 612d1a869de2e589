// The scan gate: an image is refused when a finding is at or above the policy's `failOn`
// severity and no waiver that still holds names it. A waiver names an advisory by its id or
// one of its aliases (and optionally the package); once its expiry date has passed it
// covers nothing and the refusal says so.

import type { SupplyChainPolicy, SupplyChainWaiver } from '../policy';
import type { Finding } from './osv';
import { severityRank, type Severity } from './severity';

export interface GatedFinding {
  finding: Finding;
  /** The severity the gate ranked it at (the policy's unknownSeverity when the advisory states none). */
  severity: Severity;
  /** A waiver that holds, or the one that expired (blocking, with its date). */
  waiver?: SupplyChainWaiver;
}

export interface GateDecision {
  refused: boolean;
  failOn: Severity;
  /** At or above failOn, not waived (including those whose waiver expired). */
  blocking: GatedFinding[];
  /** At or above failOn, waived by a waiver that still holds. */
  waived: GatedFinding[];
  /** Below failOn: reported, never refusing. */
  below: GatedFinding[];
  /** Waivers that match no finding (the finding is gone: the waiver can be removed). */
  unused: SupplyChainWaiver[];
}

export function waiverMatches(w: SupplyChainWaiver, f: Finding): boolean {
  if (w.id !== f.id && !f.aliases.includes(w.id)) return false;
  return w.package === undefined || w.package === f.component.name;
}

export function applyGate(findings: readonly Finding[], policy: SupplyChainPolicy, now: number = Date.now()): GateDecision {
  const d: GateDecision = { refused: false, failOn: policy.failOn, blocking: [], waived: [], below: [], unused: [] };
  const used = new Set<SupplyChainWaiver>();
  for (const finding of findings) {
    const severity = finding.severity ?? policy.unknownSeverity;
    const matching = policy.waivers.filter((w) => waiverMatches(w, finding));
    matching.forEach((w) => used.add(w));
    if (severityRank(severity) < severityRank(policy.failOn)) {
      d.below.push({ finding, severity });
      continue;
    }
    const holding = matching.find((w) => w.expiresAt >= now);
    if (holding) d.waived.push({ finding, severity, waiver: holding });
    else d.blocking.push({ finding, severity, ...(matching.length ? { waiver: matching[0] } : {}) });
  }
  d.unused = policy.waivers.filter((w) => !used.has(w));
  d.refused = d.blocking.length > 0;
  return d;
}

function line(g: GatedFinding): string {
  const f = g.finding;
  const fix = f.fixed.length ? `, fixed in ${f.fixed.join(', ')}` : ', no fix listed';
  const sev = f.severity ? g.severity : `${g.severity} (advisory states none)`;
  return `${f.id} ${sev}: ${f.component.ecosystem} ${f.component.name} ${f.component.version}${fix}${f.summary ? ` - ${f.summary}` : ''}`;
}

/** The refusal (or acceptance) in words: one line per finding that decided it. */
export function describeDecision(d: GateDecision, image: string): string {
  const out: string[] = [];
  if (d.refused) {
    out.push(`image ${image} refused: ${d.blocking.length} finding${d.blocking.length === 1 ? '' : 's'} at or above ${d.failOn} severity without a waiver that holds`);
    for (const g of d.blocking) {
      const why = g.waiver ? ` [waiver ${g.waiver.path} expired on ${g.waiver.expires}]` : '';
      out.push(`  ${line(g)}${why}`);
    }
  } else {
    out.push(`image ${image} passes the scan gate (fail on ${d.failOn}): ${d.waived.length} waived, ${d.below.length} below the threshold`);
  }
  for (const g of d.waived) out.push(`  waived until ${g.waiver!.expires} (${g.waiver!.path}: ${g.waiver!.reason}): ${line(g)}`);
  for (const w of d.unused) out.push(`  note: ${w.path} waives ${w.id}${w.package ? ` in ${w.package}` : ''}, which the image no longer has: remove it`);
  return out.join('\n');
}
