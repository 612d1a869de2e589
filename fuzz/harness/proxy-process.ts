// A real `fhirguard proxy` from the compiled dist/ on free loopback ports, as the campaign's
// target, logging warnings only (so its log costs nothing per request); ready once its admin
// /readyz answers 200 (every tier's upstream healthy). stderr is kept for the report if the
// process dies.

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { REPO_ROOT } from './repo-root';

export interface ProxyProcess {
  /** http://127.0.0.1:PORT (the FHIR listener, without the /fhir base). */
  origin: string;
  port: number;
  adminUrl: string;
  pid: number;
  child: ChildProcess;
  /** Exit code or signal once the process has ended, undefined while it runs. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  stderr(): string;
  stop(): Promise<void>;
}

/** A loopback port free right now (the proxy logs its addresses only at info level, which costs a line per request). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function startProxy(dir: string, policy: object, extraArgs: string[] = [], readyTimeoutMs = 60_000): Promise<ProxyProcess> {
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, stringify(policy));
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [join(REPO_ROOT, 'bin', 'fhirguard'), 'proxy', '--policy', policyFile, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'warn', ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
  // Never outlive the campaign, however it ends.
  const orphanGuard = () => void (exit || child.kill('SIGKILL'));
  process.once('exit', orphanGuard);
  void exited.then(() => process.off('exit', orphanGuard));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exit) throw new Error(`fhirguard proxy exited (${exit.code ?? exit.signal}) before listening:\n${stderr}`);
    try {
      const res = await request(`${adminUrl}/readyz`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      await res.body.text();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`fhirguard proxy was not ready within ${readyTimeoutMs} ms:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    adminUrl,
    pid: child.pid!,
    child,
    exit: () => exit,
    stderr: () => stderr,
    async stop() {
      if (exit) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
