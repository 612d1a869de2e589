// `fhirguard record --tier`: records a tier (one or more runs of its workload), turns the
// sets into profiles on the tier's template, and, when asked, proves them: a held-out
// workload replayed with the new profiles enforced must pass with no violation, no failed
// request caused by them, and a clean stop, and everything it needed must be in the profiles.

import type { Logger } from 'pino';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import type { Policy } from '../policy';
import type { CgroupCounters, RecordedSets } from '../enforce/bpf';
import { bpfPolicyOf, type EbpfProfile } from '../enforce/ebpf-profile';
import type { EnforcementContext } from '../enforce/launch';
import { allowedSyscalls, ociSeccomp, type OciSeccomp, type SeccompProfile } from '../enforce/seccomp';
import type { TierProfiles } from '../enforce/tier-profiles';
import { setsOf, violationsOf } from './confined-worker';
import { seccompKills, SIGSYS_EXIT } from '../enforce/seccomp-kills';
import type { StepFailure } from './drive';
import { ebpfFromRecording, recordingSeccomp, seccompFromRecording, type SeccompResult } from './profile-writer';
import { runTier, type SetupCache, type TierRunResult } from './tier-run';
import { KEPT_UNRECORDED } from './variation';
import type { Workload } from './workload';

export type SetName = keyof RecordedSets;
export const SET_NAMES: readonly SetName[] = ['boot', 'bootSeccomp', 'serve', 'shutdown'];

export interface RunSummary {
  sets: RecordedSets;
  timing: TierRunResult['timing'];
  exit: TierRunResult['exit'];
  requests: number;
  steps: number;
  statuses: Record<string, number>;
  failures: StepFailure[];
  pagesRefused: StepFailure[];
  /** Violations counted while recording: only write opens of a no-write tier can count. */
  violations: Record<string, number>;
  setupSteps: number;
  /** The other tiers' traffic during the run. */
  background: TierRunResult['background'];
}

export interface ProofResult {
  workload: string;
  timing: TierRunResult['timing'];
  exit: TierRunResult['exit'];
  requests: number;
  steps: number;
  statuses: Record<string, number>;
  /** Failed steps that did not fail the same way while recording (with every call allowed). */
  newFailures: StepFailure[];
  /** Failed steps that failed the same way while recording: not caused by the profiles. */
  sharedFailures: StepFailure[];
  pagesRefused: StepFailure[];
  /** eBPF violations during the replay, by syscall (0 everywhere for a complete profile). */
  violations: Record<string, number>;
  /** Calls the seccomp filter killed the worker at (from the kernel log), when it died of SIGSYS. */
  seccompKills: string[];
  /** What the replay made, per phase (calls past the seccomp filter; a call outside the
   * seccomp profile would have killed the worker: its default action is made fatal here). */
  needed: RecordedSets;
  /** Needed by the replay and missing from the recorded profiles (must be empty; for serve,
   * the recorded serve set plus the runtime calls kept for timing). */
  missing: { seccomp: string[]; serve: string[] };
  /** In the profiles and not needed by the replay (how much the held-out run left unused). */
  unused: { seccomp: string[]; serve: string[] };
  passed: boolean;
}

export interface TierRecording {
  tier: string;
  readOnly: boolean;
  workload: { name: string; steps: number; setupSteps: number };
  runs: RunSummary[];
  /** Union over the runs. */
  sets: RecordedSets;
  /** Names seen in some runs and not others, per set. */
  unstable: Record<SetName, string[]>;
  /** boot − bootSeccomp − serve − shutdown: what only the runtime's set-up before the filter used. */
  runtimeOnly: string[];
  seccomp: SeccompResult;
  ebpf: EbpfProfile;
  /** Runtime calls and engine rare paths (variation.ts KEPT_UNRECORDED) the template allows, kept in the seccomp profile
   * though no run recorded them. */
  seccompKept: string[];
  /** The same, kept in the serve set though no run recorded them while serving. */
  serveKept: string[];
  template: { seccompFile: string; ebpfFile: string; seccompAllowed: string[]; serve: string[]; borrowedFrom?: string };
  proof?: ProofResult;
  /** Recording time (all runs), without the proof. */
  recordMs: number;
}

export interface RecordTierOptions {
  ctx: EnforcementContext;
  policy: Policy;
  tier: string;
  template: TierProfiles;
  workload: Workload;
  /** Held-out workload for the proof; none: no proof. */
  holdout?: Workload;
  runs: number;
  /** What the provenance line of the profiles says about how they were made. */
  provenance: string;
  workerLogLevel: string;
  log: Logger;
  setupCache?: SetupCache;
  onProgress?: (what: string) => void;
}

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();
const minus = (a: Iterable<string>, b: Iterable<string>): string[] => {
  const bs = new Set(b);
  return sorted([...a].filter((x) => !bs.has(x)));
};

function summary(r: TierRunResult): RunSummary {
  return {
    sets: setsOf(r.counters),
    timing: r.timing,
    exit: r.exit,
    requests: r.workload.requests,
    steps: r.workload.steps,
    statuses: r.workload.statuses,
    failures: r.workload.failures,
    pagesRefused: r.workload.pagesRefused,
    violations: violationsOf(r.counters),
    setupSteps: r.setup.steps,
    background: r.background,
  };
}

/** The filter of the proof: the profile as enforced, its default action made fatal so that
 * a call outside it cannot pass as a quiet EPERM; its own refusals (ENOSYS) stay as written. */
export function provingSeccomp(profile: SeccompProfile): OciSeccomp {
  return { ...ociSeccomp(profile, 'enforce'), defaultAction: 'SCMP_ACT_KILL_PROCESS', defaultErrnoRet: undefined };
}

function seccompNeeded(sets: RecordedSets): string[] {
  return sorted([...sets.bootSeccomp, ...sets.serve, ...sets.shutdown]);
}

const TYPE_NAMES = new RegExp(`\\b(${R4_RESOURCE_TYPES.join('|')})\\b`, 'g');

/** The same refusal of the same kind of interaction, whatever the type or data: the two
 * halves of the corpus do not hold the same types, nor the same ids. */
function failureKey(f: StepFailure): string {
  return `${f.label.split(' ')[0]} ${f.method} ${f.status} ${f.detail.replace(TYPE_NAMES, '<type>')}`;
}

export async function recordTier(o: RecordTierOptions): Promise<TierRecording> {
  const tierConfig = o.policy.tierByName.get(o.tier);
  if (!tierConfig) throw new Error(`no tier '${o.tier}' in ${o.policy.file}`);
  const t0 = performance.now();
  const runs: RunSummary[] = [];
  for (let i = 0; i < o.runs; i++) {
    const r = await runTier({
      ctx: o.ctx,
      policy: o.policy,
      tier: o.tier,
      workload: o.workload,
      seccomp: recordingSeccomp(o.template.seccomp),
      // Recording allows everything; noWriteOpens still counts a no-write tier's write opens,
      // which enforcement would kill. Egress is left open: the container has no network.
      bpf: { allow: [], action: 'record', noWriteOpens: o.template.ebpf.noWriteOpens, phase: 'boot' },
      workerLogLevel: o.workerLogLevel,
      log: o.log,
      setupCache: o.setupCache,
      onProgress: (what) => o.onProgress?.(`${o.tier}: recording${o.runs > 1 ? ` run ${i + 1}/${o.runs}` : ''}: ${what}`),
    });
    runs.push(summary(r));
    if (r.exit.code !== 0) o.log.warn({ tier: o.tier, exit: r.exit, log: r.workerLog.slice(-2000) }, 'the recorded worker did not stop cleanly');
  }
  const recordMs = Math.round(performance.now() - t0);
  const sets = {} as RecordedSets;
  const unstable = {} as Record<SetName, string[]>;
  for (const name of SET_NAMES) {
    sets[name] = sorted(runs.flatMap((r) => r.sets[name]));
    unstable[name] = sets[name].filter((n) => !runs.every((r) => r.sets[name].includes(n)));
  }
  const needed = seccompNeeded(sets);
  const templateAllowed = allowedSyscalls(o.template.seccomp);
  const seccompKept = [...KEPT_UNRECORDED].filter((n) => templateAllowed.includes(n) && !needed.includes(n)).sort();
  const kept = ` Kept whether recorded or not: node's runtime calls that come on its own timing (memory, threads, signals, OpenSSL reseeding, time where the vDSO cannot answer, the process's own exit) and SQLite's read-only look at a rollback journal, where the template allows them; the report lists them.`;
  const seccomp = seccompFromRecording(o.template.seccomp, [...needed, ...seccompKept], o.provenance + kept);
  const allowed = allowedSyscalls(seccomp.profile);
  const serveKept = [...KEPT_UNRECORDED].filter((n) => allowed.includes(n) && !sets.serve.includes(n)).sort();
  const ebpf = ebpfFromRecording(o.template.ebpf, [...sets.serve, ...serveKept], o.provenance + kept);
  const recording: TierRecording = {
    tier: o.tier,
    readOnly: tierConfig.readOnly,
    workload: { name: o.workload.name, steps: o.workload.steps.length, setupSteps: o.workload.setup.length },
    runs,
    sets,
    unstable,
    runtimeOnly: minus(sets.boot, [...sets.bootSeccomp, ...sets.serve, ...sets.shutdown]),
    seccomp,
    ebpf,
    seccompKept,
    serveKept,
    template: {
      seccompFile: o.template.seccompFile,
      ebpfFile: o.template.ebpfFile,
      seccompAllowed: allowedSyscalls(o.template.seccomp),
      serve: [...o.template.ebpf.serve],
      ...(o.template.borrowedFrom ? { borrowedFrom: o.template.borrowedFrom } : {}),
    },
    recordMs,
  };
  if (o.holdout) recording.proof = await prove(o, recording, o.holdout);
  return recording;
}

async function prove(o: RecordTierOptions, rec: TierRecording, holdout: Workload): Promise<ProofResult> {
  const r = await runTier({
    ctx: o.ctx,
    policy: o.policy,
    tier: o.tier,
    workload: holdout,
    seccomp: provingSeccomp(rec.seccomp.profile),
    bpf: { ...bpfPolicyOf(rec.ebpf, 'enforce'), record: true },
    workerLogLevel: o.workerLogLevel,
    log: o.log,
    setupCache: o.setupCache,
    onProgress: (what) => o.onProgress?.(`${o.tier}: proof: ${what}`),
  });
  const counters: CgroupCounters = r.counters;
  const needed = setsOf(counters);
  const violations = violationsOf(counters);
  const recordedFailures = new Set(rec.runs.flatMap((x) => [...x.failures, ...x.pagesRefused]).map(failureKey));
  const newFailures = r.workload.failures.filter((f) => !recordedFailures.has(failureKey(f)));
  const sharedFailures = r.workload.failures.filter((f) => recordedFailures.has(failureKey(f)));
  const allowed = allowedSyscalls(rec.seccomp.profile);
  const missing = { seccomp: minus(seccompNeeded(needed), allowed), serve: minus(needed.serve, rec.ebpf.serve) };
  const unused = { seccomp: minus(allowed, seccompNeeded(needed)), serve: minus(rec.ebpf.serve, needed.serve) };
  const kills = r.exit.code === SIGSYS_EXIT ? await seccompKills(r.exit.pid) : [];
  const passed = Object.keys(violations).length === 0 && newFailures.length === 0 && r.exit.code === 0 && missing.seccomp.length === 0 && missing.serve.length === 0;
  if (!passed) o.log.warn({ tier: o.tier, exit: r.exit, log: r.workerLog.slice(-2000) }, 'the proof did not pass');
  return {
    workload: holdout.name,
    timing: r.timing,
    exit: r.exit,
    requests: r.workload.requests,
    steps: r.workload.steps,
    statuses: r.workload.statuses,
    newFailures,
    sharedFailures,
    pagesRefused: r.workload.pagesRefused,
    violations,
    seccompKills: kills,
    needed,
    missing,
    unused,
    passed,
  };
}
