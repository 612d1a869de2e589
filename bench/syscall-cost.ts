// What fhirguard's sys_enter program costs every syscall on the host. One run measures the same
// tight getppid loop (bpf/.output/fg-syscall-loop) with the programs detached and attached,
// interleaved round by round so machine noise hits both alike, and prints ns per syscall for:
//   detached            no fhirguard program in the kernel (baseline)
//   empty hook          an empty sys_enter program (bpf/fg-empty.bpf.c): the kernel's own
//                       price for any sys_enter hook, which no program can avoid
//   attached, outside   programs attached, caller in no fhirguard cgroup: the cost every other
//                       process on the host pays (one cgroup-id read and one hash lookup)
//   worker, audit       caller in a policed cgroup: lookup, allow bit test, per-CPU counter
//   worker, record      the same plus the recorder's per-phase set
// Needs root and `make -C bpf`. Uses a private pin directory and cgroup root, so a running
// agent's programs stay untouched (but, if attached, they add to every figure: reported).
// Run: npx tsc -p tsconfig.json && node dist/bench/syscall-cost.js [calls] [rounds]

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { BpfEnforcer, bpfOutputDir, cgroup2Mount } from '../src/enforce/bpf';

const LOOP = path.join(bpfOutputDir(), 'fg-syscall-loop');
const calls = Number(process.argv[2] ?? 2_000_000);
const rounds = Number(process.argv[3] ?? 5);

type Condition = 'detached' | 'empty hook' | 'attached, outside' | 'worker, audit' | 'worker, record';

/** Best-of-3 ns per getppid, optionally run from inside a cgroup (the shell joins, then execs). */
function measure(cgroup?: string, emptyHook = false): number {
  const args = [...(emptyHook ? ['--empty-hook'] : []), String(calls), '3'];
  const out = cgroup ? execFileSync('/bin/sh', ['-c', `echo $$ > '${cgroup}/cgroup.procs' && exec '${LOOP}' ${args.join(' ')}`]) : execFileSync(LOOP, args);
  return Number(out.toString().trim());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** fhirguard sys_enter programs some other instance (a running agent, a test) has attached. */
function othersAttached(): number {
  try {
    const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show']).toString()) as { name?: string }[];
    return progs.filter((p) => p.name === 'fg_sys_enter' || p.name === 'fg_empty').length;
  } catch {
    return -1;
  }
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('needs root: it loads eBPF programs');
  if (!existsSync(LOOP)) throw new Error(`${LOOP} is not built: run make -C bpf`);
  if (!cgroup2Mount()) throw new Error('no cgroup v2 hierarchy is mounted');
  const tag = randomBytes(4).toString('hex');
  const bpf = new BpfEnforcer({ pinDir: `/sys/fs/bpf/fhirguard-bench-${tag}`, cgroupRoot: path.join(cgroup2Mount(), `fhirguard-bench-${tag}`) });
  const audit = path.join(bpf.cgroupRoot, 'audit');
  const record = path.join(bpf.cgroupRoot, 'record');
  const others = othersAttached();
  const results: Record<Condition, number[]> = { detached: [], 'empty hook': [], 'attached, outside': [], 'worker, audit': [], 'worker, record': [] };
  try {
    for (let r = 0; r < rounds; r++) {
      results.detached.push(measure());
      results['empty hook'].push(measure(undefined, true));
      await bpf.load();
      mkdirSync(audit, { recursive: true });
      mkdirSync(record, { recursive: true });
      await bpf.setPolicy(audit, { action: 'audit', allow: [], bootAllow: 'all', phase: 'boot' });
      await bpf.setPolicy(record, { action: 'record', allow: [], phase: 'boot' });
      results['attached, outside'].push(measure());
      results['worker, audit'].push(measure(audit));
      results['worker, record'].push(measure(record));
      await bpf.unload();
    }
  } finally {
    if (existsSync(bpf.pinDir)) await bpf.unload();
    for (const d of [audit, record, bpf.cgroupRoot]) if (existsSync(d)) rmdirSync(d);
  }

  const base = median(results.detached);
  console.log(`sys_enter cost: getppid loop, ${calls} calls x best of 3, median of ${rounds} interleaved rounds`);
  if (others > 0) console.log(`note: ${others} other fhirguard sys_enter program(s) attached during the run: every figure includes them`);
  const empty = median(results['empty hook']);
  const ours = median(results['attached, outside']) - empty;
  for (const [name, xs] of Object.entries(results)) {
    const m = median(xs);
    const diff = m - base;
    console.log(`${name.padEnd(18)} ${m.toFixed(1).padStart(7)} ns/syscall` + (name === 'detached' ? '' : `   ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} ns (${((diff / base) * 100).toFixed(1)}%)`));
  }
  console.log(`fhirguard's program beyond the empty hook, for a process outside its cgroups: ${ours >= 0 ? '+' : ''}${ours.toFixed(1)} ns/syscall`);
}

main().catch((e: unknown) => {
  console.error(`syscall-cost: ${(e as Error).message}`);
  process.exit(1);
});
