// `fhirguard profile stats | diff | export`: reading the tiers' confinement profiles
// without running anything: attack-surface figures, drift between two versions, and the
// same seccomp profiles for Docker, OCI runtimes and Kubernetes.
// Exit status: 0 done (diff: identical), 1 diff found differences, 2 error or bad usage.

import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from '../install/root';
import { diffProfileSets, formatDiff } from '../profile/diff';
import { EXPORT_FORMATS, exportProfiles, SPO_APIS, type ExportFormat, type ExportMode, type SpoApi } from '../profile/export';
import { loadProfileSet } from '../profile/load';
import { defaultDockerAllowFile, loadDockerDefault } from '../profile/reference';
import { formatStats, profileStats } from '../profile/stats';
import { loadPolicy } from '../policy';
import type { Command } from './command';

type Values = Record<string, string | boolean | string[] | undefined>;

class UsageError extends Error {}

function profilesDir(values: Values): string {
  return path.resolve(typeof values.profiles === 'string' ? values.profiles : path.join(installRoot(), 'profiles'));
}

function tiersOption(values: Values): string[] | undefined {
  const t = values.tier;
  return Array.isArray(t) && t.length ? t : undefined;
}

function loadOptions(values: Values): { policyFile?: string; only?: string[] } {
  return {
    ...(typeof values.policy === 'string' ? { policyFile: path.resolve(values.policy) } : {}),
    ...(tiersOption(values) ? { only: tiersOption(values) } : {}),
  };
}

function stats(values: Values): number {
  const set = loadProfileSet(profilesDir(values), loadOptions(values));
  const docker = loadDockerDefault(typeof values['docker-default'] === 'string' ? path.resolve(values['docker-default']) : defaultDockerAllowFile());
  // A server tier's egress list is its policy's (server.egress), not its profile's.
  const serverEgress = new Map<string, string[]>();
  if (typeof values.policy === 'string') {
    try {
      for (const t of loadPolicy(path.resolve(values.policy)).tiers) if (t.server) serverEgress.set(t.name, t.server.egress.map((e) => `${e.cidr} ${e.port}`).sort());
    } catch {
      // the profile set already said the policy does not load
    }
  }
  const report = profileStats(set, docker, serverEgress);
  if (set.orderNote) process.stderr.write(`fhirguard profile: ${set.orderNote}\n`);
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatStats(report));
  return 0;
}

function diff(values: Values, args: string[]): number {
  if (args.length !== 2) throw new UsageError('diff needs two profile files or directories: diff <a> <b>');
  const [a, b] = args.map((p) => path.resolve(p));
  const sa = loadProfileSet(a, loadOptions(values));
  const sb = loadProfileSet(b, loadOptions(values));
  const fileA = statSync(a).isFile();
  const fileB = statSync(b).isFile();
  if (fileA !== fileB) throw new UsageError('diff compares two files or two directories, not a file with a directory');
  if (fileA) {
    const kindA = sa.tiers[0].seccomp ? 'seccomp' : 'eBPF';
    const kindB = sb.tiers[0].seccomp ? 'seccomp' : 'eBPF';
    if (kindA !== kindB) throw new UsageError(`cannot compare ${a} (${kindA} profile) with ${b} (${kindB} profile)`);
  }
  const report = diffProfileSets(sa, sb, fileA);
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatDiff(report));
  return report.identical ? 0 : 1;
}

function exportCmd(values: Values): number {
  const format = values.format;
  if (typeof format !== 'string' || !(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const mode = values.mode ?? 'enforce';
  if (mode !== 'enforce' && mode !== 'audit') throw new UsageError('--mode must be enforce or audit');
  const spoApi = values['spo-api'] ?? 'v1';
  if (!(SPO_APIS as readonly unknown[]).includes(spoApi)) throw new UsageError(`--spo-api must be one of ${SPO_APIS.join(', ')}`);
  const set = loadProfileSet(profilesDir(values), loadOptions(values));
  const { files, warnings } = exportProfiles(set, format as ExportFormat, { mode: mode as ExportMode, spoApi: spoApi as SpoApi });
  for (const w of warnings) process.stderr.write(`fhirguard profile: warning: ${w}\n`);
  const out = values.out;
  if (typeof out === 'string') {
    const dir = path.resolve(out);
    mkdirSync(dir, { recursive: true });
    for (const f of files) {
      const file = path.join(dir, f.name);
      writeFileSync(file, f.content);
      process.stdout.write(`${file}\n`);
    }
    return 0;
  }
  if (format === 'spo') {
    // One YAML stream, ready for `kubectl apply -f -`.
    process.stdout.write(files.map((f) => f.content).join('---\n'));
    return 0;
  }
  if (files.length !== 1) {
    throw new UsageError(`--format ${format} writes one file per tier (${files.map((f) => f.tier).join(', ')}): give --out <dir>, or --tier <name> to print one`);
  }
  process.stdout.write(files[0].content);
  return 0;
}

export const profileCommand: Command = {
  name: 'profile',
  summary: "report on, compare and export the tiers' seccomp and eBPF profiles",
  usage: 'stats | diff <a> <b> | export --format docker|oci|spo [options]',
  options: {
    profiles: {
      type: 'string',
      env: 'FHIRGUARD_PROFILES',
      arg: '<dir>',
      help: 'directory holding seccomp/<tier>.json and ebpf/<tier>.json (default: the shipped profiles/)',
    },
    policy: { type: 'string', arg: '<file>', help: 'policy giving the tier order (default: <profiles>/policy.yaml)' },
    tier: { type: 'string', multiple: true, arg: '<name>', help: 'only this tier (repeatable)' },
    json: { type: 'boolean', help: 'stats, diff: JSON instead of text' },
    'docker-default': {
      type: 'string',
      env: 'FHIRGUARD_DOCKER_DEFAULT',
      arg: '<file>',
      help: "stats: syscall names Docker's default profile allows, one a line (default: the copy shipped in profiles/reference/)",
    },
    format: { type: 'string', arg: '<docker|oci|spo>', help: 'export: output format' },
    mode: { type: 'string', arg: '<enforce|audit>', help: 'export: enforce as written, or audit (refusals become SCMP_ACT_LOG)' },
    out: { type: 'string', arg: '<dir>', help: 'export: write one file per tier here (default: stdout)' },
    'spo-api': { type: 'string', arg: '<v1|v1beta1>', help: 'export --format spo: SeccompProfile API version: v1 for SPO >= 1.0 (default), v1beta1 for SPO 0.9 and 0.10' },
  },
  details: [
    'stats     per tier: syscalls seccomp allows (boot and shutdown), the eBPF serve set, both',
    "          against Docker's default profile and the x86_64 table (% reduction), names allowed",
    '          only with argument filters, and the dangerous syscalls each phase still allows.',
    'diff      what <b> adds or removes against <a> (two profiles/ directories, or two profile',
    '          files): allowed names, argument filters, actions, serve set, egress.',
    '          Exit 0 when identical, 1 when different, 2 on error.',
    'export    docker: fhirguard-<tier>.json for `docker run --security-opt seccomp=`;',
    '          oci: fhirguard-<tier>.oci-seccomp.json, the linux.seccomp of an OCI config;',
    '          spo: fhirguard-<tier>.seccompprofile.yaml, a Security Profiles Operator SeccompProfile',
    '          (without --out: one YAML stream on stdout for `kubectl apply -f -`), cluster-scoped',
    '          as SPO >= 0.9 has it: pods name it as localhostProfile operator/fhirguard-<tier>.json.',
  ].join('\n'),
  async run(values, positionals) {
    const [sub, ...args] = positionals;
    try {
      if (sub === 'stats' && args.length === 0) return stats(values);
      if (sub === 'diff') return diff(values, args);
      if (sub === 'export' && args.length === 0) return exportCmd(values);
      throw new UsageError(sub ? `unknown or malformed subcommand: ${positionals.join(' ')}` : 'give a subcommand: stats, diff or export');
    } catch (err) {
      const usage = err instanceof UsageError ? ' (see fhirguard profile --help)' : '';
      process.stderr.write(`fhirguard profile: ${(err as Error).message}${usage}\n`);
      return 2;
    }
  },
};
