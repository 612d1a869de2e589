// The recording report, per tier: the syscall sets per phase (the runtime's own set-up kept
// apart), the sizes of the profiles against Docker's default and the x86_64 table, the
// dangerous calls left, what changed against the previous profile and why names can vary
// between runs, the proof of completeness, and the time it all took. Written as JSON (for
// tools and tests) and as Markdown (for the reviewer of a profile change).

import { existsSync } from 'node:fs';
import { dangerousAmong } from '../profile/dangerous';
import { DOCKER_DEFAULT_ALLOWED_COUNT, loadDockerDefault, X86_64_TABLE } from '../profile/reference';
import { seccompSets } from '../profile/seccomp-sets';
import type { StepFailure } from './drive';
import { SET_NAMES, type TierRecording } from './recorder';
import { variationReason } from './variation';

export interface HostFacts {
  runc: string;
  node: string;
  kernel: string;
}

export interface TierReport {
  tier: string;
  readOnly: boolean;
  workload: TierRecording['workload'] & { requests: number; statuses: Record<string, number> };
  runs: number;
  background: { requests: number; statuses: Record<string, number> };
  sets: Record<string, { count: number; names: string[] }>;
  /** Calls only the runtime's set-up made, before it installed the seccomp filter. */
  runtimeOnly: { count: number; names: string[] };
  unstable: Record<string, { name: string; why: string }[]>;
  seccomp: {
    allowed: number;
    /** Runtime calls kept for their timing though not recorded. */
    keptForTiming: { name: string; why: string }[];
    conditional: string[];
    outsideTemplate: string[];
    refusedByTemplate: string[];
    dangerous: string[];
    beyondDockerDefault: string[];
  };
  serve: { allowed: number; dangerous: string[]; keptForTiming: { name: string; why: string }[] };
  baseline: { dockerDefaultAllowed: number; x86_64Syscalls: number };
  reduction: { seccompVsDockerDefault: number; serveVsDockerDefault: number; seccompVsX86_64: number; serveVsX86_64: number };
  /** Against the profiles this recording started from (the template). */
  changes: {
    seccomp: { added: { name: string; why: string }[]; removed: { name: string; why: string }[] };
    serve: { added: { name: string; why: string }[]; removed: { name: string; why: string }[] };
  };
  failures: StepFailure[];
  pagesRefused: StepFailure[];
  violationsWhileRecording: Record<string, number>;
  timing: { recordMs: number; runs: TierRecording['runs'][number]['timing'][]; proofMs?: number };
  proof?: TierRecording['proof'];
}

export interface RecordReport {
  command: string;
  host: HostFacts;
  tiers: TierReport[];
  totalMs: number;
}

const pct = (n: number, base: number): number => Math.round((1 - n / base) * 1000) / 10;
const minus = (a: readonly string[], b: readonly string[]): string[] => {
  const bs = new Set(b);
  return [...new Set(a)].filter((x) => !bs.has(x)).sort();
};
const explained = (names: string[]): { name: string; why: string }[] => names.map((name) => ({ name, why: variationReason(name) }));

export function tierReport(rec: TierRecording, dockerDefaultFile: string | null): TierReport {
  const docker = dockerDefaultFile && existsSync(dockerDefaultFile) ? loadDockerDefault(dockerDefaultFile) : null;
  const dockerCount = docker?.allowed.size ?? DOCKER_DEFAULT_ALLOWED_COUNT;
  const s = seccompSets(rec.seccomp.profile);
  const statuses: Record<string, number> = {};
  for (const r of rec.runs) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  const violations: Record<string, number> = {};
  for (const r of rec.runs) for (const [k, v] of Object.entries(r.violations)) violations[k] = (violations[k] ?? 0) + v;
  const sets: TierReport['sets'] = {};
  for (const n of SET_NAMES) sets[n] = { count: rec.sets[n].length, names: rec.sets[n] };
  const unstable: TierReport['unstable'] = {};
  for (const n of SET_NAMES) if (rec.unstable[n].length) unstable[n] = explained(rec.unstable[n]);
  return {
    tier: rec.tier,
    readOnly: rec.readOnly,
    workload: { ...rec.workload, requests: rec.runs.reduce((a, r) => a + r.requests, 0), statuses },
    runs: rec.runs.length,
    background: {
      requests: rec.runs.reduce((a, r) => a + r.background.requests, 0),
      statuses: rec.runs.reduce<Record<string, number>>((acc, r) => {
        for (const [k, v] of Object.entries(r.background.statuses)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
    },
    sets,
    runtimeOnly: { count: rec.runtimeOnly.length, names: rec.runtimeOnly },
    unstable,
    seccomp: {
      allowed: s.allowed.length,
      keptForTiming: explained(rec.seccompKept),
      conditional: s.conditional,
      outsideTemplate: rec.seccomp.outsideTemplate,
      refusedByTemplate: rec.seccomp.refusedByTemplate,
      dangerous: dangerousAmong(s.allowed),
      beyondDockerDefault: docker ? s.allowed.filter((n) => !docker.allowed.has(n)) : [],
    },
    serve: { allowed: rec.ebpf.serve.length, dangerous: dangerousAmong(rec.ebpf.serve), keptForTiming: explained(rec.serveKept) },
    baseline: { dockerDefaultAllowed: dockerCount, x86_64Syscalls: X86_64_TABLE.length },
    reduction: {
      seccompVsDockerDefault: pct(s.allowed.length, dockerCount),
      serveVsDockerDefault: pct(rec.ebpf.serve.length, dockerCount),
      seccompVsX86_64: pct(s.allowed.length, X86_64_TABLE.length),
      serveVsX86_64: pct(rec.ebpf.serve.length, X86_64_TABLE.length),
    },
    changes: {
      seccomp: { added: explained(minus(s.allowed, rec.template.seccompAllowed)), removed: explained(minus(rec.template.seccompAllowed, s.allowed)) },
      serve: { added: explained(minus(rec.ebpf.serve, rec.template.serve)), removed: explained(minus(rec.template.serve, rec.ebpf.serve)) },
    },
    failures: rec.runs.flatMap((r) => r.failures),
    pagesRefused: rec.runs.flatMap((r) => r.pagesRefused),
    violationsWhileRecording: violations,
    timing: { recordMs: rec.recordMs, runs: rec.runs.map((r) => r.timing), ...(rec.proof ? { proofMs: rec.proof.timing.totalMs } : {}) },
    ...(rec.proof ? { proof: rec.proof } : {}),
  };
}

const list = (names: readonly string[]): string => (names.length ? names.map((n) => `\`${n}\``).join(' ') : '(none)');
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function failureLines(title: string, fs: readonly StepFailure[]): string[] {
  if (!fs.length) return [];
  const byKey = new Map<string, { f: StepFailure; n: number; expected: Set<number> }>();
  for (const f of fs) {
    const k = `${f.status} ${f.detail.slice(0, 160)}`;
    const e = byKey.get(k) ?? { f, n: 0, expected: new Set<number>() };
    e.n++;
    f.expected.forEach((x) => e.expected.add(x));
    byKey.set(k, e);
  }
  return [
    `**${title}: ${fs.length}**`,
    '',
    ...[...byKey.values()].map(
      ({ f, n, expected }) =>
        `- ${n} × ${f.status} where ${[...expected].sort().join(', ')} was expected, e.g. ${f.label}: \`${f.method} ${f.path.slice(0, 80)}\`: ${f.detail.replace(/\s+/g, ' ').slice(0, 200)}`,
    ),
    '',
  ];
}

export function tierMarkdown(t: TierReport): string[] {
  const out = [
    `## Tier \`${t.tier}\`${t.readOnly ? ' (read-only)' : ''}`,
    '',
    `Workload: ${t.workload.name}: ${t.workload.steps} steps (${t.workload.requests} requests over ${t.runs} run${t.runs > 1 ? 's' : ''}, answers ${Object.entries(t.workload.statuses)
      .map(([k, v]) => `${k}×${v}`)
      .join(', ')}), after ${t.workload.setupSteps} set-up steps outside the recording.`,
    '',
    `Meanwhile the other tiers served ${t.background.requests} requests (${
      Object.entries(t.background.statuses)
        .map(([k, v]) => `${k}×${v}`)
        .join(', ') || 'none'
    }) on the same database.`,
    '',
    '| | syscalls | vs Docker default (' + t.baseline.dockerDefaultAllowed + ') | vs x86_64 (' + t.baseline.x86_64Syscalls + ') |',
    '| --- | --- | --- | --- |',
    `| seccomp profile (boot under the filter ∪ serve ∪ shutdown) | ${t.seccomp.allowed} | −${t.reduction.seccompVsDockerDefault} % | −${t.reduction.seccompVsX86_64} % |`,
    `| eBPF serve phase | ${t.serve.allowed} | −${t.reduction.serveVsDockerDefault} % | −${t.reduction.serveVsX86_64} % |`,
    '',
    `Recorded per phase: boot ${t.sets.boot.count} (of which ${t.runtimeOnly.count} only in the runtime's set-up before the filter), boot under the filter ${t.sets.bootSeccomp.count}, serve ${t.sets.serve.count}, shutdown ${t.sets.shutdown.count}.`,
    '',
    `- serve: ${list(t.sets.serve.names)}`,
    `- kept though not recorded there (node's runtime makes them when its own timing says so, SQLite when a rollback journal is left or a commit races a read, not when a request asks; allowed by the template; reasons in the JSON report): in the seccomp profile ${list(t.seccomp.keptForTiming.map((x) => x.name))}; in serve ${list(t.serve.keptForTiming.map((x) => x.name))}`,
    `- shutdown: ${list(t.sets.shutdown.names)}`,
    `- boot under the filter: ${list(t.sets.bootSeccomp.names)}`,
    `- runtime set-up only (before runc installed the filter; not in the profile): ${list(t.runtimeOnly.names)}`,
    `- dangerous calls the seccomp profile allows: ${list(t.seccomp.dangerous)}; in serve: ${list(t.serve.dangerous)}`,
    `- allowed only with argument filters: ${list(t.seccomp.conditional)}`,
    `- used but named by no rule of the template (own rule, review): ${list(t.seccomp.outsideTemplate)}`,
    '',
    `Against the previous profile: seccomp +${list(t.changes.seccomp.added.map((x) => x.name))} −${list(t.changes.seccomp.removed.map((x) => x.name))}; serve +${list(
      t.changes.serve.added.map((x) => x.name),
    )} −${list(t.changes.serve.removed.map((x) => x.name))}.`,
    '',
  ];
  const variable = [...new Set([...t.changes.serve.added, ...t.changes.serve.removed, ...Object.values(t.unstable).flat()].map((x) => x.name))].sort();
  if (variable.length) {
    out.push('Names that can differ from one recording to the next, and why:', '');
    for (const n of variable) out.push(`- \`${n}\`: ${[...t.changes.serve.added, ...t.changes.serve.removed, ...Object.values(t.unstable).flat()].find((x) => x.name === n)!.why}`);
    out.push('');
  }
  if (Object.keys(t.unstable).length) {
    out.push(
      `Seen in some of the ${t.runs} runs only: ${Object.entries(t.unstable)
        .map(([set, xs]) => `${set}: ${list(xs.map((x) => x.name))}`)
        .join('; ')}.`,
      '',
    );
  }
  out.push(...failureLines('Steps that did not answer as expected while recording', t.failures));
  out.push(...failureLines('Page links refused (the request never reached the worker)', t.pagesRefused));
  if (Object.keys(t.violationsWhileRecording).length) {
    out.push(`**Write opens while recording a no-write tier (enforcement kills these): ${JSON.stringify(t.violationsWhileRecording)}**`, '');
  }
  const p = t.proof;
  if (p) {
    out.push(
      `### Proof of completeness: ${p.passed ? 'passed' : '**FAILED**'}`,
      '',
      `Held-out workload (${p.workload}): ${p.steps} steps, ${p.requests} requests, with the recorded profiles enforced (seccomp with its default action made fatal, eBPF enforce). ` +
        `Violations: ${Object.keys(p.violations).length ? JSON.stringify(p.violations) : '0'}; failed requests caused by the profiles: ${p.newFailures.length}; worker exit after SIGTERM: ${p.exit.code}${p.seccompKills.length ? ` (killed by the seccomp filter at ${list(p.seccompKills)})` : ''}.`,
      '',
      `- needed by the replay: seccomp ${new Set([...p.needed.bootSeccomp, ...p.needed.serve, ...p.needed.shutdown]).size} names, serve ${p.needed.serve.length}; missing from the recording: seccomp ${list(p.missing.seccomp)}, serve ${list(p.missing.serve)}`,
      `- in the profiles but not needed by the replay: seccomp ${list(p.unused.seccomp)}; serve ${list(p.unused.serve)}`,
      '',
      ...failureLines('Failed requests caused by the profiles', p.newFailures),
      ...failureLines('Failed the same way while recording (not caused by the profiles)', p.sharedFailures),
      ...failureLines('Page links refused in the replay', p.pagesRefused),
    );
  }
  const runs = t.timing.runs.map((r) => `set-up ${secs(r.setupMs)}, start ${secs(r.bootMs)}, workload ${secs(r.workloadMs)}, stop ${secs(r.shutdownMs)}`).join('; ');
  out.push(`Time: recording ${secs(t.timing.recordMs)} (${runs})${t.timing.proofMs !== undefined ? `; proof ${secs(t.timing.proofMs)}` : ''}.`, '');
  return out;
}

export function reportMarkdown(r: RecordReport): string {
  const lines = [
    '# fhirguard record',
    '',
    `\`${r.command}\` on runc ${r.host.runc}, node ${r.host.node}, Linux ${r.host.kernel}; ${secs(r.totalMs)} in all.`,
    '',
    "How: each tier's reference worker runs in its container under a seccomp filter that allows and logs (the template's refusals kept, so the worker takes the paths it takes when enforced); fhirguard creates the container's cgroup and registers it with the eBPF recorder before `runc run`, so runc's own steps inside the container are recorded; the phase switches to serve when GET /metadata answers and to shutdown before the SIGTERM that stops the worker. The workload goes through the real proxy, with plain workers for the other tiers; its data is loaded before, outside the recording. It ends with a writer that dies mid-commit (a hot rollback journal, a grown database): a read-only tier answers 503 until a writer has rolled it back, a writing tier rolls it back at its next transaction; then the steps answer as before.",
    '',
  ];
  for (const t of r.tiers) lines.push(...tierMarkdown(t));
  return lines.join('\n').replace(/\n{3,}/g, '\n\n');
}
