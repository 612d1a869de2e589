// The severity of an OSV advisory, as the gate ranks it: the advisory database's own label
// (`database_specific.severity`: GitHub's LOW/MODERATE/HIGH/CRITICAL), else the base score
// of a CVSS v3 vector in `severity[]` (computed here, rated as CVSS rates it), else unknown.

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

/** A database label to a severity: moderate is medium; anything else unknown (undefined). */
export function severityOfLabel(label: unknown): Severity | undefined {
  if (typeof label !== 'string') return undefined;
  const l = label.trim().toLowerCase();
  if (l === 'moderate') return 'medium';
  return (SEVERITIES as readonly string[]).includes(l) ? (l as Severity) : undefined;
}

/** CVSS's qualitative rating of a base score (0.0 rated low here: the gate has no "none"). */
export function severityOfScore(score: number): Severity {
  if (score >= 9) return 'critical';
  if (score >= 7) return 'high';
  if (score >= 4) return 'medium';
  return 'low';
}

const WEIGHTS: Record<string, Record<string, number>> = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  C: { H: 0.56, L: 0.22, N: 0 },
  I: { H: 0.56, L: 0.22, N: 0 },
  A: { H: 0.56, L: 0.22, N: 0 },
};

/** CVSS v3.1's Roundup: the smallest number with one decimal at or above x. */
function roundUp(x: number): number {
  const i = Math.round(x * 100000);
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
}

/** The base score of a CVSS v3.0/v3.1 vector (`CVSS:3.1/AV:N/AC:L/...`), or undefined when it is not one. */
export function cvss3BaseScore(vector: string): number | undefined {
  const parts = vector.trim().split('/');
  if (!/^CVSS:3\.[01]$/.test(parts[0] ?? '')) return undefined;
  const m: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const [k, v] = p.split(':');
    if (k && v) m[k] = v;
  }
  const scopeChanged = m.S === 'C';
  if (m.S !== 'U' && m.S !== 'C') return undefined;
  const pr = scopeChanged ? { N: 0.85, L: 0.68, H: 0.5 } : { N: 0.85, L: 0.62, H: 0.27 };
  const w = (k: string): number | undefined => WEIGHTS[k][m[k]];
  const [av, ac, ui, c, i, a] = ['AV', 'AC', 'UI', 'C', 'I', 'A'].map(w);
  const prw = (pr as Record<string, number>)[m.PR];
  if ([av, ac, ui, c, i, a, prw].some((x) => x === undefined)) return undefined;
  const iss = 1 - (1 - c!) * (1 - i!) * (1 - a!);
  const impact = scopeChanged ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  const exploitability = 8.22 * av! * ac! * prw * ui!;
  if (impact <= 0) return 0;
  return roundUp(Math.min((scopeChanged ? 1.08 : 1) * (impact + exploitability), 10));
}

interface OsvSeverity {
  type?: string;
  score?: string;
}

/**
 * An advisory's severity for one affected package: the database's label (the affected
 * entry's, else the advisory's), else the highest CVSS v3 rating among their `severity`
 * entries; undefined when neither says (v2 and v4 vectors are not scored here).
 */
export function advisorySeverity(
  advisory: { database_specific?: { severity?: unknown }; severity?: OsvSeverity[] },
  affected?: { database_specific?: { severity?: unknown }; ecosystem_specific?: { severity?: unknown }; severity?: OsvSeverity[] },
): { severity?: Severity; source: string } {
  const label = severityOfLabel(affected?.database_specific?.severity) ?? severityOfLabel(affected?.ecosystem_specific?.severity) ?? severityOfLabel(advisory.database_specific?.severity);
  if (label) return { severity: label, source: 'database_specific.severity' };
  let best: number | undefined;
  for (const s of [...(affected?.severity ?? []), ...(advisory.severity ?? [])]) {
    if (s.type !== 'CVSS_V3' || typeof s.score !== 'string') continue;
    const score = cvss3BaseScore(s.score);
    if (score !== undefined && (best === undefined || score > best)) best = score;
  }
  if (best !== undefined) return { severity: severityOfScore(best), source: `CVSS v3 base score ${best.toFixed(1)}` };
  return { source: 'none' };
}
