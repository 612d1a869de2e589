// `fhirguard record --cgroup <dir> --duration <s>`: records any running container through its
// cgroup v2 directory (a Docker or Kubernetes container's, say of an operator's own FHIR
// server) with the same eBPF recorder, and emits profiles in fhirguard's formats (which
// `fhirguard profile export` turns into Docker, OCI and SPO files). The container is already
// running, so what is seen is its serving behaviour: its start (the runtime's steps after
// the filter, the server's boot) is not, and the report says so.

import { existsSync, mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BpfEnforcer, type RecordedSets } from '../enforce/bpf';
import { ebpfProfilePath, type EbpfProfile } from '../enforce/ebpf-profile';
import { dangerousAmong } from '../profile/dangerous';
import { DOCKER_DEFAULT_ALLOWED_COUNT, X86_64_TABLE } from '../profile/reference';
import { seccompProfilePath, type SeccompProfile } from '../enforce/seccomp';
import { ebpfFromRecording, ebpfJson, seccompFromRecording, seccompJson } from './profile-writer';

const CGROUP2_SUPER_MAGIC = 0x63677270;

/** When nothing else is given: refuse (EPERM) whatever the container was not seen making. */
export const PLAIN_TEMPLATE: SeccompProfile = {
  comment: ['Profile of a container recorded by fhirguard through its cgroup.'],
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 1,
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: [],
};

export interface CgroupRecordOptions {
  cgroupDir: string;
  durationMs: number;
  /** Profile name: the files are <out>/seccomp/<name>.json and <out>/ebpf/<name>.json. */
  name: string;
  outDir: string;
  /** Rules, argument filters and refusals to keep (a profile of the same server, say). */
  template?: SeccompProfile;
  bpf?: BpfEnforcer;
  /** Ends the recording early (SIGINT). */
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

export interface CgroupReport {
  cgroup: string;
  cgid: string;
  name: string;
  durationMs: number;
  /** Everything the container did while recorded (it was already running: all of it is serving). */
  seen: string[];
  calls: Record<string, number>;
  seccomp: { file: string; allowed: number; outsideTemplate: string[]; dangerous: string[] };
  ebpf: { file: string; serve: number; dangerous: string[] };
  baseline: { dockerDefaultAllowed: number; x86_64Syscalls: number };
  warnings: string[];
}

export class CgroupRecordError extends Error {}

/** Checks that `dir` is a cgroup v2 directory (its own, not a v1 controller's). */
export function checkCgroupDir(dir: string): void {
  if (!existsSync(dir)) throw new CgroupRecordError(`${dir}: no such directory`);
  let magic: number;
  try {
    magic = Number(statfsSync(dir).type);
  } catch (err) {
    throw new CgroupRecordError(`${dir}: ${(err as Error).message}`);
  }
  if (magic !== CGROUP2_SUPER_MAGIC || !existsSync(path.join(dir, 'cgroup.procs'))) {
    throw new CgroupRecordError(`${dir} is not a cgroup v2 directory (on a hybrid host the v2 tree is under /sys/fs/cgroup/unified)`);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

export async function recordCgroup(o: CgroupRecordOptions): Promise<CgroupReport> {
  checkCgroupDir(o.cgroupDir);
  const bpf = o.bpf ?? new BpfEnforcer();
  await bpf.load();
  const before = (await bpf.counters(o.cgroupDir)).cgroups[0];
  if (before?.policy) {
    throw new CgroupRecordError(
      `${o.cgroupDir} already has a fhirguard policy (${before.policy.action}, ${before.policy.phase}): it is one of the agent's workers; record its tier with --tier instead`,
    );
  }
  const t0 = performance.now();
  // Serve from the start: the container is already running, and a recording never kills.
  const { cgid } = await bpf.setPolicy(o.cgroupDir, { allow: [], action: 'record', phase: 'serve' });
  let sets: RecordedSets;
  let calls: Record<string, number> = {};
  try {
    o.progress?.(`recording ${o.cgroupDir} (cgroup ${cgid}) for ${Math.round(o.durationMs / 1000)} s (Ctrl-C ends it early)`);
    await sleep(o.durationMs, o.signal);
    const c = (await bpf.counters(cgid)).cgroups[0];
    if (!c?.recorded) throw new CgroupRecordError(`${o.cgroupDir}: its recording is gone (was the cgroup removed?)`);
    sets = c.recorded;
    calls = Object.fromEntries(
      Object.entries(c.syscalls)
        .map(([n, s]) => [n, s.calls])
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    );
  } finally {
    await bpf.forget(cgid).catch(() => undefined);
  }
  const durationMs = Math.round(performance.now() - t0);
  const seen = [...new Set([...sets.boot, ...sets.serve, ...sets.shutdown])].filter((n) => !n.startsWith('syscall_') && !n.startsWith('(')).sort();
  const provenance = `through its cgroup (${path.basename(o.cgroupDir)}) for ${Math.round(durationMs / 1000)} s while it ran; its start was not observed.`;
  const template = o.template ?? PLAIN_TEMPLATE;
  const seccomp = seccompFromRecording(template, seen, provenance);
  const ebpfTemplate: EbpfProfile = { comment: ['Serve-phase set of a container recorded by fhirguard through its cgroup.'], serve: [], noWriteOpens: false };
  const ebpf = ebpfFromRecording(ebpfTemplate, seen, provenance);
  mkdirSync(path.join(o.outDir, 'seccomp'), { recursive: true });
  mkdirSync(path.join(o.outDir, 'ebpf'), { recursive: true });
  const seccompFile = seccompProfilePath(o.outDir, o.name);
  const ebpfFile = ebpfProfilePath(o.outDir, o.name);
  writeFileSync(seccompFile, seccompJson(seccomp.profile));
  writeFileSync(ebpfFile, ebpfJson(ebpf));
  const warnings = [
    'The container was already running: its start (the runtime after it installs the filter, the server booting) was not recorded. ' +
      'Roll the seccomp profile out in audit mode first (`fhirguard profile export --mode audit`: SCMP_ACT_LOG) and add what the log shows before enforcing.',
  ];
  if (seen.length === 0) warnings.push('Nothing was recorded: was the container idle, or is this the cgroup of its processes (not a parent)?');
  return {
    cgroup: o.cgroupDir,
    cgid,
    name: o.name,
    durationMs,
    seen,
    calls,
    seccomp: { file: seccompFile, allowed: seen.length, outsideTemplate: seccomp.outsideTemplate, dangerous: dangerousAmong(seen) },
    ebpf: { file: ebpfFile, serve: ebpf.serve.length, dangerous: dangerousAmong(ebpf.serve) },
    baseline: { dockerDefaultAllowed: DOCKER_DEFAULT_ALLOWED_COUNT, x86_64Syscalls: X86_64_TABLE.length },
    warnings,
  };
}

export function cgroupReportMarkdown(r: CgroupReport): string {
  const list = (xs: readonly string[]): string => (xs.length ? xs.map((x) => `\`${x}\``).join(' ') : '(none)');
  return [
    `# fhirguard record --cgroup ${r.cgroup}`,
    '',
    `Recorded cgroup ${r.cgid} for ${(r.durationMs / 1000).toFixed(1)} s: ${r.seen.length} syscalls (Docker's default allows ${r.baseline.dockerDefaultAllowed} of ${r.baseline.x86_64Syscalls}).`,
    '',
    `- seen: ${list(r.seen)}`,
    `- dangerous among them: ${list(r.seccomp.dangerous)}`,
    `- profiles: ${r.seccomp.file}, ${r.ebpf.file}`,
    '',
    ...r.warnings.map((w) => `**${w}**`),
    '',
  ].join('\n');
}
