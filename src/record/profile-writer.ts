// Turns recorded syscall sets into a tier's profiles, in the formats the agent loads:
//   seccomp/<tier>.json: the template's rules cut down to the names the worker used under
//     its filter (boot after the filter was installed, serve, shutdown). A rule with argument
//     filters is kept whole for a used name (the read tier's openat without write flags,
//     clone of threads only, AF_UNIX sockets, the ioctl requests listed), refusals are kept
//     as written (ENOSYS for clone3 and openat2, so callers fall back to the filtered calls),
//     and the default action is the template's. A used name no template rule allows gets a
//     rule of its own that says so, for review.
//   ebpf/<tier>.json: the serve set, with the template's noWriteOpens and egress list.
// Output is deterministic: names sorted, rules in template order, no dates.

import type { EbpfProfile } from '../enforce/ebpf-profile';
import type { OciSeccomp, SeccompAction, SeccompProfile, SeccompRule } from '../enforce/seccomp';

const ALLOWS: ReadonlySet<SeccompAction> = new Set<SeccompAction>(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG']);
const RECORDED_MARK = 'Recorded by `fhirguard record`';

export interface SeccompResult {
  profile: SeccompProfile;
  /** Used names no allowing rule of the template named (given a rule of their own). */
  outsideTemplate: string[];
  /** Names the template allowed that the recording never saw (left out). */
  dropped: string[];
  /** Used names the template refuses outright (a rule without arguments that is not an allow):
   * they stay refused; a recording should never see them, since seccomp stops them first. */
  refusedByTemplate: string[];
}

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

/**
 * The filter a tier is recorded under: the template with its default action turned into
 * SCMP_ACT_LOG. Everything runs; what the template allows runs unlogged; its explicit
 * refusals (ENOSYS for clone3/openat2) still answer as they will under enforcement, so the
 * worker takes the same paths while recorded as when enforced. Kill and trap rules log
 * instead (a recording never kills).
 */
export function recordingSeccomp(template: SeccompProfile): OciSeccomp {
  const syscalls = template.syscalls.map((r) => {
    const action: SeccompAction = r.action === 'SCMP_ACT_ERRNO' || ALLOWS.has(r.action) ? r.action : 'SCMP_ACT_LOG';
    const out: Omit<SeccompRule, 'comment'> = { names: [...r.names], action };
    if (r.args?.length) out.args = r.args.map((a) => ({ ...a, valueTwo: a.valueTwo ?? 0 }));
    if (action === 'SCMP_ACT_ERRNO' && r.errnoRet !== undefined) out.errnoRet = r.errnoRet;
    return out;
  });
  return { defaultAction: 'SCMP_ACT_LOG', architectures: [...template.architectures], syscalls };
}

/** Comment lines of a template with its provenance line replaced by `provenance`. */
export function withProvenance(comment: string | string[] | undefined, provenance: string): string[] {
  const lines = comment === undefined ? [] : Array.isArray(comment) ? [...comment] : [comment];
  const keep = lines.filter((l) => !/hand-written/i.test(l) && !l.startsWith(RECORDED_MARK));
  const line = `${RECORDED_MARK} ${provenance}`;
  return keep.length ? [keep[0], line, ...keep.slice(1)] : [line];
}

export function seccompFromRecording(template: SeccompProfile, used: Iterable<string>, provenance: string): SeccompResult {
  const need = new Set(used);
  const covered = new Set<string>();
  const refused = new Set<string>();
  const templateAllowed = new Set<string>();
  const syscalls: SeccompRule[] = [];
  for (const r of template.syscalls) {
    if (!ALLOWS.has(r.action)) {
      // Refusals tighten and shape behaviour (ENOSYS fallbacks): kept as written.
      syscalls.push({ ...r, names: [...r.names] });
      if (!r.args?.length) r.names.filter((n) => need.has(n)).forEach((n) => refused.add(n));
      continue;
    }
    r.names.forEach((n) => templateAllowed.add(n));
    const names = r.names.filter((n) => need.has(n));
    if (names.length === 0) continue;
    names.forEach((n) => covered.add(n));
    syscalls.push({ ...r, names: r.args?.length ? names : sorted(names) });
  }
  const outside = sorted([...need].filter((n) => !covered.has(n) && !refused.has(n)));
  if (outside.length) {
    syscalls.push({
      names: outside,
      action: 'SCMP_ACT_ALLOW',
      comment: 'recorded: made by the recorded processes and named by no rule of the template; review before committing',
    });
  }
  const profile: SeccompProfile = {
    comment: withProvenance(template.comment, provenance),
    defaultAction: template.defaultAction,
    ...(template.defaultErrnoRet !== undefined ? { defaultErrnoRet: template.defaultErrnoRet } : {}),
    architectures: [...template.architectures],
    syscalls,
  };
  return {
    profile,
    outsideTemplate: outside,
    dropped: sorted([...templateAllowed].filter((n) => !need.has(n))),
    refusedByTemplate: sorted(refused),
  };
}

export function ebpfFromRecording(template: EbpfProfile, serve: Iterable<string>, provenance: string): EbpfProfile {
  return {
    comment: withProvenance(template.comment, provenance),
    serve: sorted(serve),
    noWriteOpens: template.noWriteOpens,
    ...(template.egress !== undefined ? { egress: template.egress.map((e) => ({ cidr: e.cidr, port: e.port })) } : {}),
  };
}

/** The file text: key order fixed, two-space JSON, one trailing newline. */
export function seccompJson(p: SeccompProfile): string {
  const rules = p.syscalls.map((r) => ({
    names: r.names,
    action: r.action,
    ...(r.args?.length ? { args: r.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) } : {}),
    ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
    ...(r.comment !== undefined ? { comment: r.comment } : {}),
  }));
  const out = {
    ...(p.comment !== undefined ? { comment: p.comment } : {}),
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet !== undefined ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    architectures: p.architectures,
    syscalls: rules,
  };
  return JSON.stringify(out, null, 2) + '\n';
}

export function ebpfJson(p: EbpfProfile): string {
  const out = {
    ...(p.comment !== undefined ? { comment: p.comment } : {}),
    serve: p.serve,
    noWriteOpens: p.noWriteOpens,
    ...(p.egress !== undefined ? { egress: p.egress } : {}),
  };
  return JSON.stringify(out, null, 2) + '\n';
}
