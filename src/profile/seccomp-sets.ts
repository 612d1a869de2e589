// What a seccomp profile lets through, name by name. A name is allowed when some rule (or
// the default action) lets it run: SCMP_ACT_ALLOW or SCMP_ACT_LOG. It is allowed
// conditionally when only rules with argument filters let it run (openat without write
// flags, clone with CLONE_THREAD): it counts as allowed, and reports list it apart.

import type { SeccompAction, SeccompArg, SeccompProfile } from '../enforce/seccomp';
import { SYSCALL_NAMES } from '../enforce/syscalls';

export type NameStatus = 'allowed' | 'conditional' | 'denied';

function runs(action: SeccompAction): boolean {
  return action === 'SCMP_ACT_ALLOW' || action === 'SCMP_ACT_LOG';
}

export interface SeccompSets {
  /** Every name that can run, conditionally or not, sorted. */
  allowed: string[];
  /** The allowed names that run only when their arguments match a filter, sorted. */
  conditional: string[];
}

/** The status of one name: rules naming it decide, else the default action. */
export function nameStatus(profile: SeccompProfile, name: string): NameStatus {
  const rules = profile.syscalls.filter((r) => r.names.includes(name));
  const unconditional = rules.filter((r) => !r.args?.length);
  const conditional = rules.filter((r) => r.args?.length);
  if (unconditional.some((r) => runs(r.action))) return 'allowed';
  if (unconditional.length > 0) return 'denied';
  if (conditional.some((r) => runs(r.action))) return 'conditional';
  if (!runs(profile.defaultAction)) return 'denied';
  // Default allows: a conditional deny rule makes the name conditional.
  return conditional.length > 0 ? 'conditional' : 'allowed';
}

export function seccompSets(profile: SeccompProfile): SeccompSets {
  const allowed: string[] = [];
  const conditional: string[] = [];
  for (const name of SYSCALL_NAMES) {
    const s = nameStatus(profile, name);
    if (s === 'denied') continue;
    allowed.push(name);
    if (s === 'conditional') conditional.push(name);
  }
  return { allowed: allowed.sort(), conditional: conditional.sort() };
}

const OP_SYMBOL: Record<Exclude<SeccompArg['op'], 'SCMP_CMP_MASKED_EQ'>, string> = {
  SCMP_CMP_NE: '!=',
  SCMP_CMP_LT: '<',
  SCMP_CMP_LE: '<=',
  SCMP_CMP_EQ: '==',
  SCMP_CMP_GE: '>=',
  SCMP_CMP_GT: '>',
};

/** A rule's argument filter as one comparable, readable string. */
export function describeArgs(args: readonly SeccompArg[] | undefined): string {
  if (!args?.length) return '';
  return args
    .map((a) => {
      // MASKED_EQ: value is the mask, valueTwo what the masked argument must equal.
      if (a.op === 'SCMP_CMP_MASKED_EQ') return `arg${a.index} & 0x${a.value.toString(16)} == 0x${(a.valueTwo ?? 0).toString(16)}`;
      return `arg${a.index} ${OP_SYMBOL[a.op]} 0x${a.value.toString(16)}`;
    })
    .join(' && ');
}
