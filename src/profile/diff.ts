// What a new set of profiles changes against an old one, per tier and phase, for reviewing
// drift when a workload or its runtime is upgraded. Differences are semantic: comments,
// rule order and how names are grouped into rules do not count; what each syscall name
// may do, the defaults, the serve set and the egress list do.

import type { EbpfProfile } from '../enforce/ebpf-profile';
import type { SeccompProfile, SeccompRule } from '../enforce/seccomp';
import { SYSCALL_NAMES } from '../enforce/syscalls';
import type { ProfileSet, TierProfileFiles } from './load';
import { describeArgs, nameStatus, type NameStatus } from './seccomp-sets';

export interface Change<T> {
  a: T;
  b: T;
}

export interface SeccompDiff {
  files: Change<string | null>;
  /** Names b lets run (conditionally or not) that a refuses. */
  added: string[];
  /** Names a lets run that b refuses. */
  removed: string[];
  /** Names allowed in both that became conditional, or unconditional. */
  nowConditional: string[];
  nowUnconditional: string[];
  /** Conditionally allowed names whose argument filters changed. */
  argFilters: Array<{ name: string } & Change<string[]>>;
  /** Names whose rules changed action without changing whether they run (e.g. ERRNO → KILL). */
  actions: Array<{ name: string } & Change<string[]>>;
  defaultAction?: Change<string>;
  architectures?: { added: string[]; removed: string[] };
}

export interface EbpfDiff {
  files: Change<string | null>;
  serve: { added: string[]; removed: string[] };
  noWriteOpens?: Change<boolean | null>;
  /** Egress entries as `cidr port`; `(unrestricted)` stands for an absent list. */
  egress: { added: string[]; removed: string[] };
}

export interface TierDiff {
  tier: string;
  status: 'added' | 'removed' | 'changed';
  seccomp?: SeccompDiff;
  ebpf?: EbpfDiff;
}

export interface DiffReport {
  a: string;
  b: string;
  identical: boolean;
  tiers: TierDiff[];
}

const minus = (x: readonly string[], y: readonly string[]): string[] => {
  const ys = new Set(y);
  return [...new Set(x.filter((v) => !ys.has(v)))].sort();
};
const sameList = (x: readonly string[], y: readonly string[]): boolean => x.length === y.length && x.every((v, i) => v === y[i]);

function ruleText(r: SeccompRule): string {
  const errno = r.errnoRet !== undefined ? `(${r.errnoRet})` : '';
  const args = describeArgs(r.args);
  return `${r.action}${errno}${args ? ` if ${args}` : ''}`;
}

/** The rules naming a syscall, as sorted distinct texts; [] = the default action decides. */
function rulesOf(p: SeccompProfile, name: string): string[] {
  return [...new Set(p.syscalls.filter((r) => r.names.includes(name)).map(ruleText))].sort();
}

function defaultText(p: SeccompProfile): string {
  return `${p.defaultAction}${p.defaultErrnoRet !== undefined ? `(${p.defaultErrnoRet})` : ''}`;
}

function diffSeccomp(a: SeccompProfile | undefined, b: SeccompProfile | undefined, files: Change<string | null>): SeccompDiff | undefined {
  const d: SeccompDiff = { files, added: [], removed: [], nowConditional: [], nowUnconditional: [], argFilters: [], actions: [] };
  const status = (p: SeccompProfile | undefined, n: string): NameStatus => (p ? nameStatus(p, n) : 'denied');
  for (const name of SYSCALL_NAMES) {
    const sa = status(a, name);
    const sb = status(b, name);
    if (sa === 'denied' && sb !== 'denied') d.added.push(name);
    else if (sa !== 'denied' && sb === 'denied') d.removed.push(name);
    else if (sa === 'allowed' && sb === 'conditional') d.nowConditional.push(name);
    else if (sa === 'conditional' && sb === 'allowed') d.nowUnconditional.push(name);
    // Rule-level changes are reported only between two profiles; a new or dropped profile
    // is described by what it allows.
    if (!a || !b || sa !== sb) continue;
    const ra = rulesOf(a, name);
    const rb = rulesOf(b, name);
    if (sameList(ra, rb)) continue;
    if (sa === 'conditional') d.argFilters.push({ name, a: ra, b: rb });
    else d.actions.push({ name, a: ra.length ? ra : [`default ${defaultText(a)}`], b: rb.length ? rb : [`default ${defaultText(b)}`] });
  }
  d.added.sort();
  d.removed.sort();
  if (a && b) {
    if (defaultText(a) !== defaultText(b)) d.defaultAction = { a: defaultText(a), b: defaultText(b) };
    const added = minus(b.architectures, a.architectures);
    const removed = minus(a.architectures, b.architectures);
    if (added.length || removed.length) d.architectures = { added, removed };
  }
  const changed =
    d.added.length || d.removed.length || d.nowConditional.length || d.nowUnconditional.length || d.argFilters.length || d.actions.length || d.defaultAction || d.architectures || !a !== !b;
  return changed ? d : undefined;
}

function egressOf(p: EbpfProfile | undefined): string[] {
  if (!p) return [];
  return p.egress === undefined ? ['(unrestricted)'] : p.egress.map((e) => `${e.cidr} ${e.port}`);
}

function diffEbpf(a: EbpfProfile | undefined, b: EbpfProfile | undefined, files: Change<string | null>): EbpfDiff | undefined {
  const d: EbpfDiff = {
    files,
    serve: { added: minus(b?.serve ?? [], a?.serve ?? []), removed: minus(a?.serve ?? [], b?.serve ?? []) },
    egress: { added: minus(egressOf(b), egressOf(a)), removed: minus(egressOf(a), egressOf(b)) },
  };
  const nwa = a ? a.noWriteOpens : null;
  const nwb = b ? b.noWriteOpens : null;
  if (nwa !== nwb) d.noWriteOpens = { a: nwa, b: nwb };
  const changed = d.serve.added.length || d.serve.removed.length || d.egress.added.length || d.egress.removed.length || d.noWriteOpens || !a !== !b;
  return changed ? d : undefined;
}

function diffTier(tier: string, a: TierProfileFiles | undefined, b: TierProfileFiles | undefined): TierDiff | undefined {
  const seccomp = diffSeccomp(a?.seccomp?.profile, b?.seccomp?.profile, { a: a?.seccomp?.file ?? null, b: b?.seccomp?.file ?? null });
  const ebpf = diffEbpf(a?.ebpf?.profile, b?.ebpf?.profile, { a: a?.ebpf?.file ?? null, b: b?.ebpf?.file ?? null });
  if (!seccomp && !ebpf && a && b) return undefined;
  return { tier, status: !a ? 'added' : !b ? 'removed' : 'changed', ...(seccomp ? { seccomp } : {}), ...(ebpf ? { ebpf } : {}) };
}

/**
 * Compares two profile sets tier by tier. Two single files are compared with each other
 * whatever their names (a renamed copy of a tier's profile is still that tier).
 */
export function diffProfileSets(a: ProfileSet, b: ProfileSet, singleFiles: boolean): DiffReport {
  const tiers: TierDiff[] = [];
  if (singleFiles) {
    const ta = a.tiers[0];
    const tb = b.tiers[0];
    const name = ta.tier === tb.tier ? tb.tier : `${ta.tier} → ${tb.tier}`;
    const d = diffTier(name, ta, tb);
    if (d) tiers.push(d);
  } else {
    const byA = new Map(a.tiers.map((t) => [t.tier, t]));
    const byB = new Map(b.tiers.map((t) => [t.tier, t]));
    const names = [...b.tiers.map((t) => t.tier), ...a.tiers.map((t) => t.tier).filter((t) => !byB.has(t))];
    for (const tier of names) {
      const d = diffTier(tier, byA.get(tier), byB.get(tier));
      if (d) tiers.push(d);
    }
  }
  return { a: a.source, b: b.source, identical: tiers.length === 0, tiers };
}

const names = (xs: string[]): string => xs.join(', ');

export function formatDiff(r: DiffReport): string {
  if (r.identical) return `No differences between ${r.a} and ${r.b}.\n`;
  const out = [`--- ${r.a}`, `+++ ${r.b}`];
  for (const t of r.tiers) {
    out.push('', `tier ${t.tier}${t.status === 'changed' ? '' : ` (${t.status})`}:`);
    const s = t.seccomp;
    if (s) {
      out.push(`  seccomp (boot, serve, shutdown): ${s.files.a ?? '(none)'} → ${s.files.b ?? '(none)'}`);
      if (s.defaultAction) out.push(`    ~ defaultAction: ${s.defaultAction.a} → ${s.defaultAction.b}`);
      if (s.architectures?.added.length) out.push(`    + architectures: ${names(s.architectures.added)}`);
      if (s.architectures?.removed.length) out.push(`    - architectures: ${names(s.architectures.removed)}`);
      if (s.added.length) out.push(`    + allowed (${s.added.length}): ${names(s.added)}`);
      if (s.removed.length) out.push(`    - allowed (${s.removed.length}): ${names(s.removed)}`);
      if (s.nowConditional.length) out.push(`    ~ now only with argument filters: ${names(s.nowConditional)}`);
      if (s.nowUnconditional.length) out.push(`    ~ now without argument filters: ${names(s.nowUnconditional)}`);
      for (const c of s.argFilters) out.push(`    ~ argument filters of ${c.name}: [${c.a.join('; ')}] → [${c.b.join('; ')}]`);
      for (const c of s.actions) out.push(`    ~ action of ${c.name}: [${c.a.join('; ')}] → [${c.b.join('; ')}]`);
    }
    const e = t.ebpf;
    if (e) {
      out.push(`  eBPF serve phase: ${e.files.a ?? '(none)'} → ${e.files.b ?? '(none)'}`);
      if (e.serve.added.length) out.push(`    + serve (${e.serve.added.length}): ${names(e.serve.added)}`);
      if (e.serve.removed.length) out.push(`    - serve (${e.serve.removed.length}): ${names(e.serve.removed)}`);
      if (e.noWriteOpens) out.push(`    ~ noWriteOpens: ${String(e.noWriteOpens.a)} → ${String(e.noWriteOpens.b)}`);
      if (e.egress.added.length) out.push(`    + egress: ${names(e.egress.added)}`);
      if (e.egress.removed.length) out.push(`    - egress: ${names(e.egress.removed)}`);
    }
  }
  return out.join('\n') + '\n';
}
