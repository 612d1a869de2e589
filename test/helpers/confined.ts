// Shared by fhirguard's container and agent tests: they need root, runc and the eBPF
// loader on this machine (CI runs as root); a missing piece fails the test file loudly with
// the reason, it never passes silently. Also: the attack program, and `fhirguard exec` runs.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { probeKernel } from '../../src/enforce/bpf';
import { containerBlockers, probeHost } from '../../src/enforce/probe';

export const REPO = path.resolve(__dirname, '..', '..');
export const FHIRGUARD = path.join(REPO, 'bin', 'fhirguard');

/** Throws (failing the suite) unless containers and, when asked, eBPF can run here. */
export async function requireEnforcement(opts: { ebpf: boolean }): Promise<void> {
  const host = await probeHost();
  const blockers = containerBlockers(host);
  if (blockers.length) throw new Error(`container tests need root, runc and seccomp: ${blockers.join('; ')}`);
  if (opts.ebpf) {
    const k = await probeKernel();
    if (!k.syscallPolicy.available) throw new Error(`eBPF tests need fhirguard's eBPF programs: ${k.syscallPolicy.reason}`);
  }
}

/** /proc/<pid>/status as fields (Uid, CapEff, Seccomp, NoNewPrivs, ...). */
export function procStatus(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

/** A short temp directory (Unix socket paths must stay under 108 bytes). */
export function shortTempDir(prefix: string): string {
  return mkdtempSync(path.join('/tmp', `fg-${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Compiles test/helpers/attack.c into dir; returns the binary (mode 0755: workers' user runs it). */
export function buildAttack(dir: string): string {
  const out = path.join(dir, 'attack');
  execFileSync('gcc', ['-O', '-Wall', '-o', out, path.join(__dirname, 'attack.c')], { stdio: 'inherit' });
  return out;
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Parses the attack program's `<name> ok` / `<name> errno=X` lines. */
export function outcomes(stdout: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (ok|errno=\S+)$/.exec(line.trim());
    if (m) r[m[1]] = m[2] === 'ok' ? 'ok' : m[2].slice('errno='.length);
  }
  return r;
}

/**
 * Runs `fhirguard exec <args>`. With `serveWhenWaiting`, once the attack program says
 * `waiting` (its start-up is done) sends exec SIGUSR1 (serve phase now), and once exec says
 * the serve phase is on, lets the program go on (a line on its stdin). With `releaseOnServe`
 * only the latter (the serve phase comes from --serve-after).
 */
export function runExec(args: string[], opts: { serveWhenWaiting?: boolean; releaseOnServe?: boolean } = {}): Promise<ExecResult> {
  const release = opts.serveWhenWaiting || opts.releaseOnServe;
  return new Promise((resolve, reject) => {
    const child = spawn(FHIRGUARD, ['exec', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    let released = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.serveWhenWaiting && !signalled && stdout.includes('waiting\n')) {
        signalled = true;
        child.kill('SIGUSR1');
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (release && !released && stderr.includes('fhirguard exec: serve phase\n')) {
        released = true;
        child.stdin.end('go\n');
      }
    });
    if (!release) child.stdin.end();
    child.stdin.on('error', () => undefined);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
