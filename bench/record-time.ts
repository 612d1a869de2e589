// How long `fhirguard record` takes for every tier of the shipped policy on the default
// workloads (the whole recording half of the Synthea corpus), against the target of
// 2 minutes for all tiers; with --prove, also the proofs (reported apart, not in the target).
// Needs root, runc and the eBPF loader. Writes nothing into profiles/ (a temp --out).
// Run: npx tsc -p tsconfig.json && node dist/bench/record-time.js [--prove]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import path from 'node:path';
import type { RecordReport } from '../src/record/report';

const ROOT = path.resolve(__dirname, '..', '..');
const TARGET_MS = 120_000;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'fhirguard'), 'record', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

async function main(): Promise<void> {
  const prove = process.argv.includes('--prove');
  const dir = mkdtempSync(path.join(tmpdir(), 'fg-bench-record-'));
  try {
    const before = loadavg()[0];
    const r = await run(['--out', path.join(dir, 'out'), '--state-dir', path.join(dir, 'state'), '--json', ...(prove ? ['--prove'] : [])]);
    if (r.code !== 0) throw new Error(`fhirguard record exited with ${r.code}`);
    const report = JSON.parse(r.stdout) as RecordReport;
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    console.log(
      `\nfhirguard record, shipped policy, default workloads: runc ${report.host.runc}, node ${report.host.node}, Linux ${release()}, ${cpus().length} cores, load ${before.toFixed(1)} → ${loadavg()[0].toFixed(1)}`,
    );
    console.log('tier   record    set-up   start  workload+idle  stop   proof   seccomp  serve');
    let recordMs = 0;
    for (const t of report.tiers) {
      const x = t.timing.runs[0];
      recordMs += t.timing.recordMs;
      console.log(
        `${t.tier.padEnd(6)} ${s(t.timing.recordMs).padStart(7)} ${s(x.setupMs).padStart(8)} ${s(x.bootMs).padStart(7)} ${s(x.workloadMs).padStart(14)} ${s(x.shutdownMs).padStart(5)} ${(t.timing.proofMs !== undefined ? s(t.timing.proofMs) : '-').padStart(7)} ${String(t.seccomp.allowed).padStart(8)} ${String(t.serve.allowed).padStart(6)}`,
      );
    }
    console.log(
      `all tiers recorded in ${s(recordMs)} (command ${s(r.ms)} with start-up${prove ? ' and proofs' : ''}); target ${s(TARGET_MS)}: ratio ${(recordMs / TARGET_MS).toFixed(2)} (<= 1 meets it)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
