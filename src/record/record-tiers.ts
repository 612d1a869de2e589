// `fhirguard record --tier ...` end to end: opens fhirguard's enforcement (runc, the eBPF
// recorder), records each tier in the policy's order on its own template, proves it when
// asked, writes <out>/seccomp/<tier>.json, <out>/ebpf/<tier>.json and the reports
// <out>/reports/<tier>.{json,md}. A tier whose proof fails gets its report, not its profiles.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { openEnforcement } from '../enforce/open';
import { ebpfProfilePath } from '../enforce/ebpf-profile';
import { sameIdentity } from '../enforce/identities';
import type { WorkerIdentity } from '../enforce/layout';
import { seccompProfilePath } from '../enforce/seccomp';
import { loadTierProfiles } from '../enforce/tier-profiles';
import type { Policy } from '../policy';
import { loadDataset } from './corpus';
import { defaultWorkload } from './default-workloads';
import { ebpfJson, seccompJson } from './profile-writer';
import { recordTier, type TierRecording } from './recorder';
import { reportMarkdown, tierReport, type HostFacts, type RecordReport, type TierReport } from './report';
import { SetupCache } from './tier-run';
import { saveWorkload, type Workload } from './workload';

export interface RecordTiersOptions {
  command: string;
  policy: Policy;
  tiers: string[];
  install: string;
  profilesDir: string;
  outDir: string;
  stateDir: string;
  runcPath?: string;
  identity: WorkerIdentity;
  corpusDir: string;
  /** Patient bundles per half for the default workloads (default all). */
  patients?: number;
  /** Own workloads: recording (and held-out, for --prove) for the single tier recorded. */
  workload?: Workload;
  holdout?: Workload;
  prove: boolean;
  runs: number;
  saveWorkloads?: string;
  dockerDefaultFile: string | null;
  workerLogLevel: string;
  log: Logger;
  progress: (line: string) => void;
}

export interface RecordTiersResult {
  report: RecordReport;
  recordings: TierRecording[];
  /** Tiers whose profiles were written. */
  written: string[];
  /** Tiers whose proof failed (report only). */
  failedProofs: string[];
}

export function hostFacts(runcVersion: string | undefined): HostFacts {
  return { runc: runcVersion ?? 'unknown', node: process.version, kernel: release() };
}

export async function recordTiers(o: RecordTiersOptions): Promise<RecordTiersResult> {
  const t0 = performance.now();
  const { ctx, status } = await openEnforcement({ stateDir: o.stateDir, install: o.install, identities: sameIdentity(o.identity), runcPath: o.runcPath });
  if (!ctx) throw new Error(`cannot run containers here: ${status.containers.reason}`);
  if (!ctx.bpf) throw new Error(`the eBPF recorder is not available: ${status.ebpf.reason}`);
  const host = hostFacts(status.host.runc.version);
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'fhirguard-record-setup-'));
  const setupCache = new SetupCache(cacheDir);
  const recordings: TierRecording[] = [];
  const reports: TierReport[] = [];
  const written: string[] = [];
  const failedProofs: string[] = [];
  const recordingData = o.workload ? undefined : loadDataset(o.corpusDir, 'recording', { patientsPerHalf: o.patients });
  const holdoutData = o.workload || !o.prove ? undefined : loadDataset(o.corpusDir, 'holdout', { patientsPerHalf: o.patients });
  try {
    for (const tier of o.tiers) {
      const config = o.policy.tierByName.get(tier);
      if (!config) throw new Error(`no tier '${tier}' in ${o.policy.file}`);
      const template = loadTierProfiles(o.profilesDir, tier, config.readOnly);
      const workload = o.workload ?? defaultWorkload(recordingData!, o.policy, tier);
      const holdout = o.prove ? (o.holdout ?? defaultWorkload(holdoutData!, o.policy, tier)) : undefined;
      if (workload.steps.length === 0) throw new Error(`the policy routes none of the workload's requests to tier ${tier}`);
      if (o.saveWorkloads) {
        mkdirSync(o.saveWorkloads, { recursive: true });
        saveWorkload(path.join(o.saveWorkloads, `${tier}.recording.json`), workload);
        if (holdout) saveWorkload(path.join(o.saveWorkloads, `${tier}.holdout.json`), holdout);
      }
      const provenance =
        `from the tier's worker in its container (boot after runc installed the filter, serve, shutdown), ` +
        `workload: ${workload.name}${o.runs > 1 ? `, ${o.runs} runs` : ''}; ` +
        `rules, argument filters and refusals from the previous profile. Report: reports/${tier}.md.`;
      const rec = await recordTier({
        ctx,
        policy: o.policy,
        tier,
        template,
        workload,
        holdout,
        runs: o.runs,
        provenance,
        workerLogLevel: o.workerLogLevel,
        log: o.log,
        setupCache,
        onProgress: o.progress,
      });
      recordings.push(rec);
      const report = tierReport(rec, o.dockerDefaultFile);
      reports.push(report);
      const reportsDir = path.join(o.outDir, 'reports');
      mkdirSync(reportsDir, { recursive: true });
      writeFileSync(path.join(reportsDir, `${tier}.json`), JSON.stringify(report, null, 2) + '\n');
      writeFileSync(path.join(reportsDir, `${tier}.md`), reportMarkdown({ command: o.command, host, tiers: [report], totalMs: rec.recordMs + (rec.proof?.timing.totalMs ?? 0) }));
      if (rec.proof && !rec.proof.passed) {
        failedProofs.push(tier);
        o.progress(`${tier}: the proof failed: profiles not written (see ${path.join(reportsDir, `${tier}.md`)})`);
        continue;
      }
      mkdirSync(path.join(o.outDir, 'seccomp'), { recursive: true });
      mkdirSync(path.join(o.outDir, 'ebpf'), { recursive: true });
      writeFileSync(seccompProfilePath(o.outDir, tier), seccompJson(rec.seccomp.profile));
      writeFileSync(ebpfProfilePath(o.outDir, tier), ebpfJson(rec.ebpf));
      written.push(tier);
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
  const report: RecordReport = { command: o.command, host, tiers: reports, totalMs: Math.round(performance.now() - t0) };
  return { report, recordings, written, failedProofs };
}
