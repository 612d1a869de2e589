// `fhirguard image scan`, and the agent's check before it runs an image: the image's
// inventory (sbom.ts) matched against the advisory database (osv.ts), then the policy's
// gate (scan-gate.ts). The scan report is what a signed statement binds: it depends only on the
// image, the database and the policy's gate settings and waivers (never on the time of the
// scan), so its digest changes exactly when one of those does. Whether a waiver still holds
// is decided at each check, against the clock.

import { createHash } from 'node:crypto';
import type { SupplyChainPolicy } from '../policy';
import { applyGate, waiverMatches, type GateDecision } from './scan-gate';
import { resolveImage, type ResolvedImage } from './layout';
import { loadAdvisories, matchAdvisories, type AdvisoryDb, type Finding } from './osv';
import { cycloneDx, inventory, type Inventory } from './sbom';
import { severityRank } from './severity';

export interface ScanReport {
  reportVersion: 1;
  image: { digest: string };
  sbom: { format: 'CycloneDX'; specVersion: '1.5'; sha256: string; components: number };
  advisories: { sha256: string; count: number };
  gate: { failOn: string; unknownSeverity: string };
  findings: Array<{
    id: string;
    aliases: string[];
    ecosystem: string;
    package: string;
    version: string;
    purl: string;
    severity: string | null;
    severitySource: string;
    fixed: string[];
    summary: string;
  }>;
  /** The waivers that match a finding at or above failOn: what the gate relies on. */
  waivers: Array<{ id: string; package?: string; reason: string; expires: string }>;
}

export interface ScanResult {
  image: ResolvedImage;
  inventory: Inventory;
  sbom: Record<string, unknown>;
  sbomJson: string;
  db: AdvisoryDb;
  findings: Finding[];
  report: ScanReport;
  reportJson: string;
  /** sha256 (hex) of reportJson. */
  reportDigest: string;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

export function scanReport(image: ResolvedImage, sbomJson: string, components: number, db: AdvisoryDb, findings: Finding[], policy: SupplyChainPolicy): ScanReport {
  const relied = new Map<string, ScanReport['waivers'][number]>();
  for (const f of findings) {
    if (severityRank(f.severity ?? policy.unknownSeverity) < severityRank(policy.failOn)) continue;
    for (const w of policy.waivers) {
      if (waiverMatches(w, f)) {
        relied.set(w.path, { id: w.id, ...(w.package ? { package: w.package } : {}), reason: w.reason, expires: w.expires });
      }
    }
  }
  return {
    reportVersion: 1,
    image: { digest: image.digest },
    sbom: { format: 'CycloneDX', specVersion: '1.5', sha256: sha256(sbomJson), components },
    advisories: { sha256: db.digest, count: db.advisories.length },
    gate: { failOn: policy.failOn, unknownSeverity: policy.unknownSeverity },
    findings: findings.map((f) => ({
      id: f.id,
      aliases: f.aliases,
      ecosystem: f.component.ecosystem,
      package: f.component.name,
      version: f.component.version,
      purl: f.component.purl,
      severity: f.severity ?? null,
      severitySource: f.severitySource,
      fixed: f.fixed,
      summary: f.summary,
    })),
    waivers: [...relied.values()],
  };
}

export interface ScanOptions {
  /** The image reference (`<layout>[:<tag>]` or `<layout>@sha256:...`). */
  image: string;
  /** The OSV advisory directory. */
  advisories: string;
  policy: SupplyChainPolicy;
  tool: { name: string; version: string };
  /** An image already resolved (the agent's, by digest): skips resolving `image` again. */
  resolved?: ResolvedImage;
}

export async function scanImage(o: ScanOptions): Promise<ScanResult> {
  const image = o.resolved ?? resolveImage(o.image);
  const inv = await inventory(image);
  const sbom = cycloneDx(inv, o.tool);
  const sbomJson = JSON.stringify(sbom, null, 2) + '\n';
  const db = loadAdvisories(o.advisories);
  const findings = matchAdvisories(db, inv);
  const report = scanReport(image, sbomJson, inv.components.length, db, findings, o.policy);
  const reportJson = JSON.stringify(report, null, 2) + '\n';
  return { image, inventory: inv, sbom, sbomJson, db, findings, report, reportJson, reportDigest: sha256(reportJson) };
}

/** The gate on a scan, now. */
export function gateScan(scan: ScanResult, policy: SupplyChainPolicy, now: number = Date.now()): GateDecision {
  return applyGate(scan.findings, policy, now);
}
