// The agent's handle on fhirguard's eBPF programs: a typed wrapper around the loader
// bpf/.output/fhirguard-bpf. Each call runs one loader subcommand; all state lives pinned in
// bpffs, so nothing here needs to stay alive for enforcement to go on, and a restarted agent
// simply calls load() again and finds its policies and counters. Runs in the privileged agent
// only (the loader needs root): the proxy reads counters from the agent, never from here.

import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from '../install/root';
import { createInterface } from 'node:readline';
import { syscallName, syscallNr } from './syscalls';

export type Phase = 'boot' | 'serve' | 'shutdown';
export const PHASES: readonly Phase[] = ['boot', 'serve', 'shutdown'];

/** audit: count violations; enforce: SIGKILL the process at a violation; record: allow all,
 * count and record every syscall per phase (for `fhirguard record`). */
export type BpfAction = 'audit' | 'enforce' | 'record';

export interface EgressRule {
  /** An IPv4 or IPv6 address with an optional prefix length: `127.0.0.1/32`, `::1`, `10.0.0.0/8`. */
  cidr: string;
  /** Destination port; 0 allows every port. */
  port: number;
}

export interface BpfPolicy {
  /** Syscall names the serve phase allows. */
  allow: readonly string[];
  action: BpfAction;
  /** Serve phase: an open/openat/openat2 with O_WRONLY, O_RDWR, O_CREAT, O_TRUNC or O_APPEND,
   * or a creat, is a violation. */
  noWriteOpens?: boolean;
  /** Absent: egress unrestricted. Present (even empty): inet connect/sendmsg only to these. */
  egress?: readonly EgressRule[];
  /** Boot and shutdown allow sets; default 'all' (seccomp, fixed at exec, covers those). */
  bootAllow?: readonly string[] | 'all';
  shutdownAllow?: readonly string[] | 'all';
  /** Record syscall sets per phase beside audit/enforce (implied by action 'record'). */
  record?: boolean;
  /** Phase to set now; default: keep the cgroup's current phase, or boot for a new one. */
  phase?: Phase;
}

/** Per phase, plus `bootSeccomp`: the boot-phase calls made while the caller already had a
 * seccomp filter. A container runtime's own set-up inside the cgroup (mounts, pivot_root, ...)
 * happens before it installs the filter: it is in `boot` but not in `bootSeccomp`, and a
 * seccomp profile needs `bootSeccomp ∪ serve ∪ shutdown`. */
export type RecordedSets = Record<Phase | 'bootSeccomp', string[]>;
const RECORDED_SETS = [...PHASES, 'bootSeccomp'] as const;

export interface SyscallCount {
  nr: number;
  calls: number;
  violations: number;
}

export interface CgroupCounters {
  /** The cgroup v2 id (decimal string: ids are 64-bit). */
  cgid: string;
  policy: { action: 'audit' | 'enforce'; phase: Phase; record: boolean; noWriteOpens: boolean; egress: boolean } | null;
  /** By syscall name (`(compat-or-unknown)` for 32-bit entry and unknown numbers). */
  syscalls: Record<string, SyscallCount>;
  egressDenied: number;
  egressAllowed: number;
  /** Syscall names seen per phase, sorted; null unless the policy records. */
  recorded: RecordedSets | null;
}

export interface BpfCounters {
  /** Violation events the ring buffer had no room for (the decisions were still made). */
  eventsDropped: number;
  cgroups: CgroupCounters[];
}

export interface BpfEvent {
  cgid: string;
  pid: number;
  tid: number;
  comm: string;
  kind: 'syscall' | 'write-open' | 'egress';
  action: 'audit' | 'enforce';
  phase: Phase;
  /** syscall and write-open events. */
  syscall?: string;
  nr?: number;
  openFlags?: number;
  /** egress events. */
  family?: 4 | 6;
  addr?: string;
  port?: number;
}

export interface LoadResult {
  pinDir: string;
  cgroupRoot: string;
  cgroupRootId: string;
  /** reused: the pinned link already ran this build's program; replaced: it ran another
   * build's (or was defunct) and was swapped for this one without a gap; attached: new. */
  links: { program: string; link: string; reused: boolean; state: 'attached' | 'reused' | 'replaced' }[];
}

export interface BpfOptions {
  /** The loader binary; default $FHIRGUARD_BPF_LOADER or <repo>/bpf/.output/fhirguard-bpf. */
  loader?: string;
  /** bpffs directory holding the pinned maps and links; default /sys/fs/bpf/fhirguard. */
  pinDir?: string;
  /** cgroup v2 directory above every worker's cgroup, where the egress programs attach;
   * default <cgroup v2 mount>/fhirguard (/sys/fs/cgroup/unified/fhirguard here). */
  cgroupRoot?: string;
}

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/fhirguard';

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup/unified on a hybrid host,
 * /sys/fs/cgroup on a pure v2 one; '' when there is none. */
export function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[f.indexOf('-') + 1] === 'cgroup2') return f[4] ?? '';
  }
  return '';
}

/** The workers' cgroup v2 parent, where the egress programs attach: <cgroup2>/fhirguard. */
export function defaultCgroupRoot(): string {
  return path.join(cgroup2Mount() || '/sys/fs/cgroup/unified', 'fhirguard');
}

export function bpfOutputDir(): string {
  return path.join(installRoot(), 'bpf', '.output');
}

export function defaultLoaderPath(): string {
  return process.env.FHIRGUARD_BPF_LOADER ?? path.join(bpfOutputDir(), 'fhirguard-bpf');
}

function nrsOf(names: readonly string[] | 'all', what: string): string {
  if (names === 'all') return 'all';
  const nrs = names.map((n) => {
    const nr = syscallNr(n);
    if (nr === undefined) throw new Error(`${what}: unknown x86_64 syscall "${n}"`);
    return nr;
  });
  return [...new Set(nrs)].sort((a, b) => a - b).join(' ');
}

/** The loader's policy spec (see bpf/loader-spec.c, parse_spec) for a policy. */
export function policySpec(p: BpfPolicy): string {
  const record = p.action === 'record' || p.record === true;
  const lines = ['# fhirguard eBPF policy', `action ${p.action === 'enforce' ? 'enforce' : 'audit'}`, `record ${record ? 1 : 0}`];
  lines.push(`no-write-opens ${p.noWriteOpens ? 1 : 0}`);
  // Recording must never kill nor flood the event ring with violations: every phase allows all.
  const sets: Record<Phase, readonly string[] | 'all'> =
    p.action === 'record' ? { boot: 'all', serve: 'all', shutdown: 'all' } : { boot: p.bootAllow ?? 'all', serve: p.allow, shutdown: p.shutdownAllow ?? 'all' };
  for (const ph of PHASES) {
    const nrs = nrsOf(sets[ph], `${ph} allow set`);
    lines.push(`allow ${ph}${nrs ? ` ${nrs}` : ''}`);
  }
  if (p.egress !== undefined) {
    if (p.egress.length === 0) lines.push('egress none');
    for (const r of p.egress) {
      if (!/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/.test(r.cidr)) throw new Error(`egress: bad address "${r.cidr}"`);
      if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) throw new Error(`egress: bad port ${r.port}`);
      lines.push(`egress ${r.cidr} ${r.port}`);
    }
  }
  if (p.phase !== undefined) lines.push(`phase ${p.phase}`);
  return lines.join('\n') + '\n';
}

export class LoaderError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`fhirguard-bpf ${command}: ${stderr.trim() || `exited with ${exitCode}`}`);
  }
}

interface RawCgroup {
  cgid: string;
  policy: CgroupCounters['policy'];
  syscalls: Record<string, { calls: number; violations: number }>;
  egressDenied: number;
  egressAllowed: number;
  recorded: Partial<Record<Phase | 'bootSeccomp', number[]>> | null;
}

function nameOf(nr: number): string {
  return syscallName(nr) ?? `syscall_${nr}`;
}

function toCounters(raw: RawCgroup): CgroupCounters {
  const syscalls: Record<string, SyscallCount> = {};
  for (const [nr, c] of Object.entries(raw.syscalls)) syscalls[nameOf(Number(nr))] = { nr: Number(nr), ...c };
  let recorded: CgroupCounters['recorded'] = null;
  if (raw.recorded) {
    recorded = { boot: [], serve: [], shutdown: [], bootSeccomp: [] };
    for (const set of RECORDED_SETS) recorded[set] = (raw.recorded[set] ?? []).map(nameOf).sort();
  }
  return { cgid: raw.cgid, policy: raw.policy, syscalls, egressDenied: raw.egressDenied, egressAllowed: raw.egressAllowed, recorded };
}

export class BpfEnforcer {
  readonly loader: string;
  readonly pinDir: string;
  readonly cgroupRoot: string;

  constructor(opts: BpfOptions = {}) {
    this.loader = opts.loader ?? defaultLoaderPath();
    this.pinDir = opts.pinDir ?? process.env.FHIRGUARD_BPF_PIN_DIR ?? DEFAULT_PIN_DIR;
    this.cgroupRoot = opts.cgroupRoot ?? process.env.FHIRGUARD_CGROUP_ROOT ?? defaultCgroupRoot();
  }

  private args(rest: string[]): string[] {
    return ['--pin-dir', this.pinDir, '--cgroup-root', this.cgroupRoot, ...rest];
  }

  private run(rest: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(this.loader, this.args(rest), { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(new LoaderError(rest[0] ?? '', stderr || err.message, code));
        } else resolve(stdout);
      });
      // A loader that fails early closes its stdin: its exit status tells the story, not EPIPE.
      child.stdin?.on('error', () => undefined);
      if (input === undefined) child.stdin?.end();
      else child.stdin?.end(input);
    });
  }

  private async json<T>(rest: string[], input?: string): Promise<T> {
    return JSON.parse(await this.run(rest, input)) as T;
  }

  /** Loads the programs (reusing pinned maps), attaches and pins whatever is not attached yet;
   * mounts bpffs if needed. Idempotent: a restarted agent calls it again. */
  load(): Promise<LoadResult> {
    return this.json<LoadResult>(['load']);
  }

  /** Registers (or replaces) a cgroup's policy; its counters and recorded sets are kept. */
  setPolicy(cgroupPath: string, policy: BpfPolicy): Promise<{ cgid: string; phase: Phase; egressRules: number }> {
    return this.json(['set-policy', cgroupPath, '-'], policySpec(policy));
  }

  /** Switches a registered cgroup's phase with one map update. */
  setPhase(cgroupPath: string, phase: Phase): Promise<{ cgid: string; phase: Phase }> {
    return this.json(['phase', cgroupPath, phase]);
  }

  async counters(cgroupPath?: string): Promise<BpfCounters> {
    const raw = await this.json<{ eventsDropped: number; cgroups: RawCgroup[] }>(cgroupPath === undefined ? ['counters'] : ['counters', '--cgroup', cgroupPath]);
    return { eventsDropped: raw.eventsDropped, cgroups: raw.cgroups.map(toCounters) };
  }

  /** The syscall names a recording cgroup made, per phase. */
  async recorded(cgroupPath: string): Promise<RecordedSets> {
    const c = (await this.counters(cgroupPath)).cgroups[0];
    if (!c) throw new Error(`${cgroupPath}: not registered with fhirguard's eBPF programs`);
    if (!c.recorded) throw new Error(`${cgroupPath}: its policy does not record`);
    return c.recorded;
  }

  /** Drops a cgroup's policy, counters, sets and egress rules (by path, or by id once the
   * directory is gone). */
  forget(cgroupPathOrId: string): Promise<{ cgid: string; forgotten: boolean }> {
    return this.json(['forget', cgroupPathOrId]);
  }

  async cgroupId(cgroupPath: string): Promise<string> {
    return (await this.run(['cgid', cgroupPath])).trim();
  }

  /** Unpins everything: the programs detach and every policy and counter is gone. */
  unload(): Promise<{ unloaded: boolean }> {
    return this.json(['unload']);
  }

  /** Streams violation events until stop(); resolves once the reader is attached. */
  watchEvents(onEvent: (e: BpfEvent) => void): Promise<{ stop(): Promise<void> }> {
    const child = spawn(this.loader, this.args(['events']), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    return new Promise((resolve, reject) => {
      let ready = false;
      createInterface({ input: child.stdout }).on('line', (line) => {
        const e = JSON.parse(line) as BpfEvent & { ready?: boolean };
        if (e.ready) {
          ready = true;
          resolve({
            stop: async () => {
              child.kill('SIGTERM');
              await exited;
            },
          });
          return;
        }
        if (e.nr !== undefined) e.syscall = nameOf(e.nr);
        onEvent(e);
      });
      child.once('error', reject);
      void exited.then(() => {
        if (!ready) reject(new LoaderError('events', stderr, child.exitCode));
      });
    });
  }
}

export interface Mechanism {
  available: boolean;
  /** Why not, precisely enough for an operator to act on. */
  reason?: string;
}

export interface KernelSupport {
  loader: string;
  euid: number | null;
  /** raw_tracepoint/sys_enter: per-cgroup syscall policy, counters, kill on violation. */
  syscallPolicy: Mechanism;
  /** cgroup/connect4, connect6, sendmsg4, sendmsg6 on the cgroup v2 root of the workers. */
  egress: Mechanism;
  /** The same sys_enter program marking per-phase syscall sets. */
  recorder: Mechanism;
  /** BPF-LSM, which could refuse a syscall instead of killing after it: not used yet,
   * reported for operators. */
  lsm: Mechanism;
  /** The kernel's active LSMs and lockdown state ('' when unreadable), for operators. */
  activeLsms: string;
  lockdown: string;
  /** Where the cgroup v2 hierarchy is mounted ('' when nowhere). */
  cgroup2Mount: string;
  bpffsMounted: boolean;
  /** The loader's raw probe output, when it ran. */
  probe?: unknown;
}

interface ProbeCheck {
  ok: boolean;
  reason?: string;
  mount?: string;
}

interface ProbeJson {
  euid: number;
  activeLsms: string;
  lockdown: string;
  capabilities: { sysAdmin: boolean; bpf: boolean; perfmon: boolean; netAdmin: boolean };
  checks: Record<string, ProbeCheck>;
}

function none(reason: string): Mechanism {
  return { available: false, reason };
}

function mechanism(checks: Record<string, ProbeCheck>, names: string[]): Mechanism {
  const failed = names.filter((n) => !checks[n]?.ok);
  if (failed.length === 0) return { available: true };
  return none(failed.map((n) => `${n}: ${checks[n]?.reason ?? 'not reported by the loader'}`).join('; '));
}

/** What this host lets fhirguard enforce in the kernel, and precisely why not where it cannot
 * (for the agent's degraded mode): the loader's own probe, which also runs fhirguard's programs
 * through the verifier without attaching them. */
export async function probeKernel(opts: BpfOptions = {}): Promise<KernelSupport> {
  const loader = opts.loader ?? defaultLoaderPath();
  const euid = typeof process.geteuid === 'function' ? process.geteuid() : null;
  const base = { loader, euid, cgroup2Mount: '', bpffsMounted: false, activeLsms: '', lockdown: '' };
  if (!existsSync(loader)) {
    const marker = path.join(path.dirname(loader), 'UNSUPPORTED');
    const why = existsSync(marker)
      ? `the eBPF programs were not built: ${readFileSync(marker, 'utf8').trim()}`
      : `the loader ${loader} is not built (run \`make -C bpf\`; needs clang, bpftool, libbpf-dev)`;
    return { ...base, syscallPolicy: none(why), egress: none(why), recorder: none(why), lsm: none(why) };
  }
  let probe: ProbeJson;
  try {
    probe = await new Promise<ProbeJson>((resolve, reject) => {
      execFile(loader, ['probe'], (err, stdout, stderr) => {
        if (err) reject(new Error(stderr.trim() || err.message));
        else resolve(JSON.parse(stdout) as ProbeJson);
      });
    });
  } catch (e) {
    const why = `the loader's probe failed: ${(e as Error).message}`;
    return { ...base, syscallPolicy: none(why), egress: none(why), recorder: none(why), lsm: none(why) };
  }
  const c = probe.checks;
  const privileged = probe.euid === 0 || probe.capabilities.sysAdmin || (probe.capabilities.bpf && probe.capabilities.perfmon);
  const notRoot = `not privileged (euid ${probe.euid}, no CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON): only the root agent can load eBPF programs`;
  // bpffs is not required up front: the loader mounts it (root can).
  const core = ['bpfSyscall', 'btf', 'programs'];
  const syscallPolicy = privileged ? mechanism(c, [...core, 'rawTracepoint', 'sendSignal', 'ringbuf']) : none(notRoot);
  const egress = privileged ? mechanism(c, [...core, 'cgroup2', 'cgroupSockAddr']) : none(notRoot);
  const recorder = privileged ? mechanism(c, [...core, 'rawTracepoint']) : none(notRoot);
  return {
    ...base,
    euid: probe.euid,
    syscallPolicy,
    egress,
    recorder,
    lsm: mechanism(c, ['lsm']),
    activeLsms: probe.activeLsms,
    lockdown: probe.lockdown,
    cgroup2Mount: c.cgroup2?.ok ? (c.cgroup2.mount ?? '') : '',
    bpffsMounted: c.bpffs?.ok ?? false,
    probe,
  };
}
