// Tier seccomp profiles: loaded from profiles/seccomp/<tier>.json (the Docker/OCI seccomp
// JSON format that `docker run --security-opt seccomp=` and Kubernetes Localhost profiles
// read) and turned into the `linux.seccomp` of a container's OCI config for one mode:
//   enforce: as written (denials are errno or kill);
//   audit:   every non-allow action becomes SCMP_ACT_LOG, so a new profile can be rolled
//            out without breaking anything while its would-be denials show up in the log;
//   record:  everything allowed and logged, for recording what a workload really needs.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { syscallNr } from './syscalls';

export type SeccompAction = 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_TRAP' | 'SCMP_ACT_LOG' | 'SCMP_ACT_TRACE';

export type SeccompOp = 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

const ACTIONS: ReadonlySet<string> = new Set<SeccompAction>([
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_LOG',
  'SCMP_ACT_TRACE',
]);
const OPS: ReadonlySet<string> = new Set<SeccompOp>(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOp;
}

export interface SeccompRule {
  names: string[];
  action: SeccompAction;
  args?: SeccompArg[];
  errnoRet?: number;
  /** Why the rule exists (kept in the file, not sent to the kernel). */
  comment?: string;
}

/** A profile file as written in profiles/seccomp/ (Docker's format plus a `comment`). */
export interface SeccompProfile {
  comment?: string | string[];
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: SeccompRule[];
}

/** The `linux.seccomp` object of an OCI runtime config. */
export interface OciSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: Array<Omit<SeccompRule, 'comment'>>;
}

export type SeccompMode = 'enforce' | 'audit' | 'record';

export class SeccompProfileError extends Error {}

function fail(file: string, where: string, msg: string): never {
  throw new SeccompProfileError(`${file}: ${where}: ${msg}`);
}

function checkAction(file: string, where: string, v: unknown): SeccompAction {
  if (typeof v !== 'string' || !ACTIONS.has(v)) fail(file, where, `unknown action ${JSON.stringify(v)}`);
  return v as SeccompAction;
}

function checkUint(file: string, where: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  // Values above 2^53 cannot be written exactly in JSON read by JavaScript; profiles use
  // masks and small constants only.
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(file, where, `${JSON.stringify(v)} is not an integer in 0..${max}`);
  return v;
}

/** Checks a parsed profile; every mistake names the file and the rule. */
export function parseSeccompProfile(json: unknown, file: string): SeccompProfile {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(file, 'top level', 'not a JSON object');
  const o = json as Record<string, unknown>;
  const defaultAction = checkAction(file, 'defaultAction', o.defaultAction);
  const architectures = o.architectures ?? ['SCMP_ARCH_X86_64'];
  if (!Array.isArray(architectures) || !architectures.every((a) => typeof a === 'string' && /^SCMP_ARCH_[A-Z0-9_]+$/.test(a))) {
    fail(file, 'architectures', 'must be a list of SCMP_ARCH_* names');
  }
  if (!Array.isArray(o.syscalls)) fail(file, 'syscalls', 'must be a list');
  const syscalls = o.syscalls.map((r: unknown, i: number): SeccompRule => {
    const where = `syscalls[${i}]`;
    if (typeof r !== 'object' || r === null) fail(file, where, 'not an object');
    const rule = r as Record<string, unknown>;
    if (!Array.isArray(rule.names) || rule.names.length === 0 || !rule.names.every((n) => typeof n === 'string' && /^[a-z0-9_]+$/.test(n))) {
      fail(file, `${where}.names`, 'must be a non-empty list of syscall names');
    }
    const unknown = (rule.names as string[]).filter((n) => syscallNr(n) === undefined);
    if (unknown.length) fail(file, `${where}.names`, `not x86_64 syscalls: ${unknown.join(', ')}`);
    const out: SeccompRule = { names: rule.names as string[], action: checkAction(file, `${where}.action`, rule.action) };
    if (rule.errnoRet !== undefined) out.errnoRet = checkUint(file, `${where}.errnoRet`, rule.errnoRet, 4095);
    if (typeof rule.comment === 'string') out.comment = rule.comment;
    if (rule.args !== undefined && rule.args !== null) {
      if (!Array.isArray(rule.args)) fail(file, `${where}.args`, 'must be a list');
      out.args = rule.args.map((a: unknown, j: number): SeccompArg => {
        const aw = `${where}.args[${j}]`;
        const arg = (a ?? {}) as Record<string, unknown>;
        if (typeof arg.op !== 'string' || !OPS.has(arg.op)) fail(file, `${aw}.op`, `unknown operator ${JSON.stringify(arg.op)}`);
        const parsed: SeccompArg = {
          index: checkUint(file, `${aw}.index`, arg.index, 5),
          value: checkUint(file, `${aw}.value`, arg.value),
          op: arg.op as SeccompOp,
        };
        if (arg.valueTwo !== undefined) parsed.valueTwo = checkUint(file, `${aw}.valueTwo`, arg.valueTwo);
        return parsed;
      });
    }
    return out;
  });
  const profile: SeccompProfile = { defaultAction, architectures: architectures as string[], syscalls };
  if (o.defaultErrnoRet !== undefined) profile.defaultErrnoRet = checkUint(file, 'defaultErrnoRet', o.defaultErrnoRet, 4095);
  if (typeof o.comment === 'string' || Array.isArray(o.comment)) profile.comment = o.comment as string | string[];
  return profile;
}

export function seccompProfilePath(profilesDir: string, tier: string): string {
  return path.join(profilesDir, 'seccomp', `${tier}.json`);
}

export function loadSeccompProfile(file: string): SeccompProfile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SeccompProfileError(`${file}: ${(err as Error).message}`);
  }
  return parseSeccompProfile(json, file);
}

function isAllow(action: SeccompAction): boolean {
  return action === 'SCMP_ACT_ALLOW' || action === 'SCMP_ACT_LOG';
}

/** The OCI `linux.seccomp` for a profile in one mode. */
export function ociSeccomp(profile: SeccompProfile, mode: SeccompMode): OciSeccomp {
  if (mode === 'record') {
    return { defaultAction: 'SCMP_ACT_LOG', architectures: [...profile.architectures], syscalls: [] };
  }
  const audit = mode === 'audit';
  const syscalls = profile.syscalls.map((r) => {
    const action = audit && !isAllow(r.action) ? 'SCMP_ACT_LOG' : r.action;
    const rule: Omit<SeccompRule, 'comment'> = { names: [...r.names], action };
    if (r.args?.length) rule.args = r.args.map((a) => ({ ...a, valueTwo: a.valueTwo ?? 0 }));
    if (action === 'SCMP_ACT_ERRNO' && r.errnoRet !== undefined) rule.errnoRet = r.errnoRet;
    return rule;
  });
  const out: OciSeccomp = {
    defaultAction: audit && !isAllow(profile.defaultAction) ? 'SCMP_ACT_LOG' : profile.defaultAction,
    architectures: [...profile.architectures],
    syscalls,
  };
  if (out.defaultAction === 'SCMP_ACT_ERRNO' && profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  return out;
}

/** Names of syscalls a profile allows under some condition (for reports and the eBPF boot set). */
export function allowedSyscalls(profile: SeccompProfile): string[] {
  const names = new Set<string>();
  for (const r of profile.syscalls) if (isAllow(r.action)) r.names.forEach((n) => names.add(n));
  return [...names].sort();
}
