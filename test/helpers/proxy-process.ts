// A real `fhirguard proxy` process for tests, started from the compiled dist/ (run
// `npx tsc -p tsconfig.json` first) on ephemeral ports. Its pino log (JSON lines on stdout)
// is kept: the 'fhirguard proxy listening' line gives the FHIR base URL and admin address.
//
//   const dir = mkdtempSync(join(tmpdir(), 'fg-proxy-'));
//   const proxy = await startProxy({ dir, policy: { tiers: [...], rules: [...] } });
//   await fetch(`${proxy.fhirUrl}/Patient/1`);
//   await proxy.stop();                    // SIGTERM, expects a clean exit
//   afterAll(() => stopAllProxies());      // safety net for failed tests

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPO_ROOT, terminate } from './worker-process';
import { poll } from './poll';

const BIN = join(REPO_ROOT, 'bin', 'fhirguard');

export interface StartProxyOptions {
  /** A directory the test owns (the policy file is written there). */
  dir: string;
  /** The policy, as the YAML document's data (or YAML text). */
  policy: object | string;
  /** Extra command-line arguments (e.g. ['--body-limit', '1000']). */
  args?: string[];
  logLevel?: string;
  readyTimeoutMs?: number;
}

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface ProxyProcess {
  /** e.g. http://127.0.0.1:PORT/fhir */
  fhirUrl: string;
  /** http://127.0.0.1:PORT of the FHIR listener (no base). */
  origin: string;
  /** host:port of the FHIR listener, as a client's Host header has it. */
  host: string;
  /** http://127.0.0.1:PORT of the admin listener. */
  adminUrl: string;
  pid: number;
  /** The policy file it was started with (a reload reads it again). */
  policyFile: string;
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs(): LogLine[];
  /** Whatever was written to stderr. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for exit (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ProxyProcess>();
let counter = 0;

export async function startProxy(opts: StartProxyOptions): Promise<ProxyProcess> {
  const policyFile = join(opts.dir, `policy-${process.pid}-${++counter}.yaml`);
  writeFileSync(policyFile, typeof opts.policy === 'string' ? opts.policy : stringify(opts.policy));
  // One process unless the test asks for more: what most tests check is one proxy's behaviour.
  const processes = (opts.args ?? []).includes('--processes') ? [] : ['--processes', '1'];
  const args = [BIN, 'proxy', '--policy', policyFile, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', opts.logLevel ?? 'info', ...processes, ...(opts.args ?? [])];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: LogLine[] = [];
  let partial = '';
  let stderr = '';
  let onLine: ((l: LogLine) => void) | undefined;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const l = JSON.parse(text) as LogLine;
        lines.push(l);
        onLine?.(l);
      } catch {
        stderr += `[stdout, not JSON] ${text}\n`;
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));

  const listening = await new Promise<LogLine>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fhirguard proxy did not start within ${opts.readyTimeoutMs ?? 60_000} ms:\n${stderr}`));
    }, opts.readyTimeoutMs ?? 60_000);
    onLine = (l) => {
      if (l.msg === 'fhirguard proxy listening') {
        clearTimeout(timer);
        resolve(l);
      }
    };
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`fhirguard proxy exited (${code ?? signal}) before listening:\n${stderr}\n${lines.map((l) => l.msg).join('\n')}`));
    });
  });
  onLine = undefined;

  const fhirUrl = String(listening.fhir);
  const url = new URL(fhirUrl);
  const p: ProxyProcess = {
    fhirUrl,
    origin: url.origin,
    host: url.host,
    adminUrl: `http://${String(listening.admin)}`,
    pid: child.pid!,
    policyFile,
    child,
    logs: () => lines,
    stderr: () => stderr,
    exited,
    async stop(timeoutMs = 20_000) {
      running.delete(p);
      return terminate(child, exited, timeoutMs);
    },
  };
  running.add(p);
  return p;
}

/** Polls the admin /readyz until it answers `status` (200 or 503). */
export async function waitReadyz(proxy: ProxyProcess, status: 200 | 503, timeoutMs = 30_000): Promise<unknown> {
  let last: unknown;
  return poll(
    `/readyz to answer ${status}`,
    async () => {
      const res = await fetch(`${proxy.adminUrl}/readyz`);
      last = { status: res.status, body: await res.json() };
      return res.status === status ? (last as { body: unknown }).body : false;
    },
    { timeoutMs, detail: () => JSON.stringify(last) },
  );
}

/** Kills every proxy this test file started and still runs (call in afterAll). */
export async function stopAllProxies(): Promise<void> {
  await Promise.all(
    [...running].map(async (p) => {
      running.delete(p);
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
}
