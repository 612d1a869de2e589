// Attack-surface figures per tier: how many x86_64 syscalls each phase of a worker may
// make, against Docker's default profile and the whole table, and which dangerous ones
// remain. Boot (and shutdown) are bounded by seccomp alone: the eBPF boot phase allows
// every call the seccomp filter lets through; the serve phase is the eBPF serve set.

import { dangerousAmong } from './dangerous';
import type { ProfileSet } from './load';
import { X86_64_TABLE, type DockerDefault } from './reference';
import { seccompSets } from './seccomp-sets';

export interface TierStats {
  tier: string;
  /** x86_64 names the seccomp profile lets run (conditionally or not); null without a seccomp profile. */
  seccompAllowed: number | null;
  /** Names allowed only with argument filters (part of seccompAllowed). */
  conditionallyAllowed: string[];
  bootAllowed: number | null;
  serveAllowed: number | null;
  dockerDefaultAllowed: number;
  x86_64Syscalls: number;
  /** % fewer syscalls than the baseline, one decimal; null where the phase has no profile. */
  reduction: {
    seccompVsDockerDefault: number | null;
    seccompVsX86_64: number | null;
    serveVsDockerDefault: number | null;
    serveVsX86_64: number | null;
  };
  dangerous: { seccomp: string[]; boot: string[]; serve: string[] };
  /** Allowed by seccomp though Docker's default refuses them. */
  beyondDockerDefault: string[];
  /** In the serve set though seccomp never lets them run (they can never happen). */
  serveOutsideSeccomp: string[];
  noWriteOpens: boolean | null;
  /** Egress allow-list as `cidr port`; null = unrestricted, [] = none. */
  egress: string[] | null;
  files: { seccomp: string | null; ebpf: string | null };
}

export interface StatsReport {
  source: string;
  dockerDefault: { file: string; allowed: number };
  x86_64Syscalls: number;
  tiers: TierStats[];
}

function reduction(n: number | null, base: number): number | null {
  return n === null ? null : Math.round((1 - n / base) * 1000) / 10;
}

/** `serverEgress`: a server tier's egress list from its policy (the agent applies it in place of the profile's). */
export function profileStats(set: ProfileSet, docker: DockerDefault, serverEgress: ReadonlyMap<string, string[]> = new Map()): StatsReport {
  const total = X86_64_TABLE.length;
  const tiers = set.tiers.map((t): TierStats => {
    const sets = t.seccomp ? seccompSets(t.seccomp.profile) : undefined;
    const serve = t.ebpf?.profile.serve;
    const allowed = sets ? new Set(sets.allowed) : undefined;
    const seccompAllowed = sets ? sets.allowed.length : null;
    const serveAllowed = serve ? serve.length : null;
    return {
      tier: t.tier,
      seccompAllowed,
      conditionallyAllowed: sets?.conditional ?? [],
      bootAllowed: seccompAllowed,
      serveAllowed,
      dockerDefaultAllowed: docker.allowed.size,
      x86_64Syscalls: total,
      reduction: {
        seccompVsDockerDefault: reduction(seccompAllowed, docker.allowed.size),
        seccompVsX86_64: reduction(seccompAllowed, total),
        serveVsDockerDefault: reduction(serveAllowed, docker.allowed.size),
        serveVsX86_64: reduction(serveAllowed, total),
      },
      dangerous: {
        seccomp: dangerousAmong(sets?.allowed ?? []),
        boot: dangerousAmong(sets?.allowed ?? []),
        serve: dangerousAmong(serve ?? []),
      },
      beyondDockerDefault: (sets?.allowed ?? []).filter((n) => !docker.allowed.has(n)),
      serveOutsideSeccomp: allowed && serve ? serve.filter((n) => !allowed.has(n)) : [],
      noWriteOpens: t.ebpf ? t.ebpf.profile.noWriteOpens : null,
      egress: serverEgress.get(t.tier) ?? (!t.ebpf ? null : t.ebpf.profile.egress === undefined ? null : t.ebpf.profile.egress.map((e) => `${e.cidr} ${e.port}`).sort()),
      files: { seccomp: t.seccomp?.file ?? null, ebpf: t.ebpf?.file ?? null },
    };
  });
  return { source: set.source, dockerDefault: { file: docker.file, allowed: docker.allowed.size }, x86_64Syscalls: total, tiers };
}

const dash = (v: number | null): string => (v === null ? '-' : String(v));
// A reduction of 69.4% shows as -69.4%; a profile allowing more than the baseline shows +.
const pct = (v: number | null): string => (v === null ? '-' : `${v > 0 ? '-' : v < 0 ? '+' : ''}${Math.abs(v).toFixed(1)}%`);
const list = (names: string[]): string => (names.length ? names.join(', ') : 'none');

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

/** The human report: one table, then the names behind the numbers. */
export function formatStats(r: StatsReport): string {
  const out = [
    `Profiles: ${r.source}`,
    `Baselines: x86_64 table ${r.x86_64Syscalls} syscalls; Docker's default profile allows ${r.dockerDefault.allowed} (${r.dockerDefault.file})`,
    '',
    ...table([
      ['tier', 'seccomp', 'of which conditional', 'boot', 'serve', 'seccomp vs Docker', 'serve vs Docker', 'seccomp vs x86_64', 'serve vs x86_64'],
      ...r.tiers.map((t) => [
        t.tier,
        dash(t.seccompAllowed),
        String(t.conditionallyAllowed.length),
        dash(t.bootAllowed),
        dash(t.serveAllowed),
        pct(t.reduction.seccompVsDockerDefault),
        pct(t.reduction.serveVsDockerDefault),
        pct(t.reduction.seccompVsX86_64),
        pct(t.reduction.serveVsX86_64),
      ]),
    ]),
    '',
    'Boot and shutdown are bounded by seccomp (the eBPF boot phase allows what seccomp allows); serve is the eBPF serve set.',
  ];
  for (const t of r.tiers) {
    out.push('', `${t.tier}:`);
    out.push(`  conditionally allowed (argument filters): ${list(t.conditionallyAllowed)}`);
    out.push(`  dangerous allowed by seccomp (boot, shutdown): ${list(t.dangerous.seccomp)}`);
    out.push(`  dangerous allowed in serve: ${t.serveAllowed === null ? '- (no eBPF profile)' : list(t.dangerous.serve)}`);
    out.push(`  allowed beyond Docker's default (${t.beyondDockerDefault.length}): ${list(t.beyondDockerDefault)}`);
    if (t.serveOutsideSeccomp.length) out.push(`  in the serve set but refused by seccomp: ${t.serveOutsideSeccomp.join(', ')}`);
    if (t.noWriteOpens !== null)
      out.push(`  serve: write opens ${t.noWriteOpens ? 'refused' : 'allowed'}; egress ${t.egress === null ? 'unrestricted' : t.egress.length ? t.egress.join(', ') : 'none'}`);
    if (!t.files.seccomp) out.push('  no seccomp profile');
    if (!t.files.ebpf) out.push('  no eBPF profile');
  }
  return out.join('\n') + '\n';
}
