// The severity of an OSV advisory, as the gate ranks it: the advisory database's own label
// (`database_specific.severity`: GitHub's LOW/MODERATE/HIGH/CRITICAL), else the base score
// of a CVSS v2, v3 or v4 vector in `severity[]` (rated as CVSS rates it), else unknown.

import { fromVector } from 'ae-cvss-calculator';

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

/** OSV's severity types, newest first: the order in which an advisory's vectors are believed. */
const CVSS_VERSIONS = ['CVSS_V4', 'CVSS_V3', 'CVSS_V2'] as const;
type CvssVersion = (typeof CVSS_VERSIONS)[number];

/** The version a vector is written in, from its own prefix (v2 vectors have none). */
function versionOf(vector: string): CvssVersion | undefined {
  if (vector.startsWith('CVSS:4.0/')) return 'CVSS_V4';
  if (/^CVSS:3\.[01]\//.test(vector)) return 'CVSS_V3';
  if (/^\(?AV:[LAN]\//.test(vector)) return 'CVSS_V2';
  return undefined;
}

/** The base metrics a vector of each version must name: the library scores missing ones as defaults. */
const BASE_METRICS: Readonly<Record<CvssVersion, readonly string[]>> = {
  CVSS_V4: ['AV', 'AC', 'AT', 'PR', 'UI', 'VC', 'VI', 'VA', 'SC', 'SI', 'SA'],
  CVSS_V3: ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'],
  CVSS_V2: ['AV', 'AC', 'Au', 'C', 'I', 'A'],
};

function namesBaseMetrics(type: CvssVersion, vector: string): boolean {
  const named = new Set(
    vector
      .replace(/^\(|\)$/g, '')
      .split('/')
      .map((part) => part.split(':')[0]),
  );
  return BASE_METRICS[type].every((m) => named.has(m));
}

/**
 * The base score of a CVSS v2, v3.0, v3.1 or v4.0 vector, computed by ae-cvss-calculator (a
 * kept implementation of FIRST's specifications); undefined when the text is not a complete
 * vector of the version `type` names. Base metrics only, in every version: v4.0 folds threat
 * and environmental metrics into its one score, which would let an issuer's "no exploit
 * reported yet" (E:U) or its own environment lower the rating the gate ranks an image by.
 */
export function cvssBaseScore(type: string, vector: string): number | undefined {
  const v = vector.trim();
  const version = versionOf(v);
  if (version !== type || !namesBaseMetrics(version, v)) return undefined;
  try {
    const scores = fromVector(v)?.calculateScores();
    const base = scores && 'baseMetricsOnly' in scores ? scores.baseMetricsOnly : scores?.base;
    return typeof base === 'number' && Number.isFinite(base) ? base : undefined;
  } catch {
    return undefined;
  }
}

/** CVSS's qualitative rating of a base score, per version: v2 has no critical. */
function severityOf(type: CvssVersion, score: number): Severity {
  if (type === 'CVSS_V2') return score >= 7 ? 'high' : score >= 4 ? 'medium' : 'low';
  return severityOfScore(score);
}

interface OsvSeverity {
  type?: string;
  score?: string;
}

/**
 * An advisory's severity for one affected package: the database's label (the affected
 * entry's, else the advisory's), else the CVSS vectors of their `severity` entries: the
 * newest CVSS version present decides (v4, else v3, else v2: a later scoring by the same
 * issuer under a newer standard supersedes an older one), the highest base score within it;
 * undefined when none says.
 */
export function advisorySeverity(
  advisory: { database_specific?: { severity?: unknown }; severity?: OsvSeverity[] },
  affected?: { database_specific?: { severity?: unknown }; ecosystem_specific?: { severity?: unknown }; severity?: OsvSeverity[] },
): { severity?: Severity; source: string } {
  const label = severityOfLabel(affected?.database_specific?.severity) ?? severityOfLabel(affected?.ecosystem_specific?.severity) ?? severityOfLabel(advisory.database_specific?.severity);
  if (label) return { severity: label, source: 'database_specific.severity' };
  const entries = [...(affected?.severity ?? []), ...(advisory.severity ?? [])];
  for (const type of CVSS_VERSIONS) {
    let best: number | undefined;
    for (const s of entries) {
      if (s.type !== type || typeof s.score !== 'string') continue;
      const score = cvssBaseScore(type, s.score);
      if (score !== undefined && (best === undefined || score > best)) best = score;
    }
    if (best !== undefined) return { severity: severityOf(type, best), source: `CVSS v${type.slice(-1)} base score ${best.toFixed(1)}` };
  }
  return { source: 'none' };
}
