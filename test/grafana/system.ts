// The real fhirguard system the dashboard test scrapes, and the workload it drives: FHIR
// interactions of every tier of the shipped policy plus requests fhirguard must refuse.
//
// Started as `fhirguard up` (agent, confined workers, proxy) when that command exists and
// the test runs as root; otherwise as the proxy in front of real reference workers, which
// exports the request metrics only (the enforcement metrics come from the agent).

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { commandSurface } from '../deploy/cli-options';
import { startWorker, type WorkerProcess } from '../helpers/worker-process';
import { REPO_ROOT } from './dashboard';
import { poll } from '../helpers/poll';
import { freePort, waitFor } from './prometheus-server';

const FHIRGUARD = join(REPO_ROOT, 'bin', 'fhirguard');

export interface RunningSystem {
  mode: 'up' | 'proxy';
  base: string;
  admin: string;
  stateDir?: string;
  /** The `up` process (mode up). */
  pid?: number;
  log(): string;
  stop(): Promise<void>;
}

function spawnLogged(args: string[]): { proc: ChildProcess; log: () => string; exited: Promise<void>; gone: () => boolean } {
  const proc = spawn(FHIRGUARD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  let gone = false;
  proc.stderr?.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => (gone = true));
  return { proc, log: () => log, exited, gone: () => gone };
}

async function waitReady(admin: string, p: { log: () => string; gone: () => boolean }, timeoutMs: number): Promise<void> {
  await poll(
    `fhirguard to be ready on ${admin}/readyz`,
    async () => {
      const r = await fetch(`${admin}/readyz`);
      return r.ok ? true : undefined;
    },
    // An exited fhirguard fails the wait at once, with what it said.
    { timeoutMs, intervalMs: 250, abort: () => (p.gone() ? `fhirguard exited:\n${p.log().slice(-4000)}` : undefined) },
  );
}

export function canRunUp(): boolean {
  return commandSurface('up') !== undefined && process.getuid?.() === 0;
}

/**
 * The shipped policy with the ops tier in audit mode: its violations are counted and not
 * killed, so one attack there shows the audit side of the metrics (and its egress attempt
 * reaches the egress hook), while the read tier enforces.
 */
export function testPolicy(): string {
  const policy = parseYaml(readFileSync(join(REPO_ROOT, 'profiles', 'policy.yaml'), 'utf8'));
  for (const t of policy.tiers) if (t.name === 'ops') t.mode = 'audit';
  return stringify(policy);
}

export async function startUp(dir: string): Promise<RunningSystem> {
  const [listen, admin] = [await freePort(), await freePort()];
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, testPolicy());
  const stateDir = join(dir, 'state');
  const p = spawnLogged(['up', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--policy', policyFile, '--state-dir', stateDir, '--log-level', 'warn']);
  const adminUrl = `http://127.0.0.1:${admin}`;
  try {
    await waitReady(adminUrl, p, 300_000);
  } catch (err) {
    if (!p.gone()) p.proc.kill('SIGTERM');
    await p.exited;
    await reapLeftovers(stateDir);
    throw err;
  }
  return {
    mode: 'up',
    base: `http://127.0.0.1:${listen}/fhir`,
    admin: adminUrl,
    stateDir,
    pid: p.proc.pid!,
    log: p.log,
    async stop() {
      if (!p.gone()) p.proc.kill('SIGTERM');
      await p.exited;
      await reapLeftovers(stateDir);
    },
  };
}

/**
 * `up` stops its agent and workers itself; should it fail to, the processes this test
 * started are found by the state directory only they name, and stopped by pid, and their
 * containers removed from the runc root only they use.
 */
async function reapLeftovers(stateDir: string): Promise<void> {
  const { readdirSync, readFileSync: read } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const mine = (): number[] =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((pid) => {
        try {
          return read(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(stateDir);
        } catch {
          return false;
        }
      })
      .map(Number);
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = mine();
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    await waitFor('leftover processes to exit', async () => (mine().length === 0 ? true : undefined), 15_000, 200).catch(() => undefined);
  }
  const runcRoot = join(stateDir, 'runc');
  const list = spawnSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' });
  for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
  // A container that failed to start can leave runc's bind mount in its state directory.
  const mounts = read('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m !== undefined && m.startsWith(`${stateDir}/`));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
}

export async function startProxyAndWorkers(dir: string): Promise<RunningSystem> {
  const db = join(dir, 'fhir.db');
  const workers: WorkerProcess[] = [];
  workers.push(await startWorker({ tier: 'write', db, socket: join(dir, 'write.sock') }));
  workers.push(await startWorker({ tier: 'ops', db, socket: join(dir, 'ops.sock') }));
  workers.push(await startWorker({ tier: 'read', db, readOnly: true, socket: join(dir, 'read.sock') }));
  const policy = parseYaml(readFileSync(join(REPO_ROOT, 'profiles', 'policy.yaml'), 'utf8'));
  for (const t of policy.tiers) {
    delete t.workers;
    t.upstreams = [`unix:${join(dir, `${t.name}.sock`)}`];
  }
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, stringify(policy));
  const [listen, admin] = [await freePort(), await freePort()];
  const p = spawnLogged(['proxy', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--policy', policyFile, '--processes', '1', '--log-level', 'warn']);
  const adminUrl = `http://127.0.0.1:${admin}`;
  try {
    await waitReady(adminUrl, p, 120_000);
  } catch (err) {
    for (const w of workers) await w.stop();
    throw err;
  }
  return {
    mode: 'proxy',
    base: `http://127.0.0.1:${listen}/fhir`,
    admin: adminUrl,
    log: p.log,
    async stop() {
      if (!p.gone()) p.proc.kill('SIGTERM');
      await p.exited;
      for (const w of workers) await w.stop();
    },
  };
}

interface Sent {
  what: string;
  status: number;
}

async function send(base: string, what: string, method: string, path: string, body?: unknown, contentType = 'application/fhir+json'): Promise<Sent & { json?: any }> {
  const init: RequestInit = { method, headers: { accept: 'application/fhir+json' } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = contentType;
  }
  const r = await fetch(`${base}${path}`, init);
  const text = await r.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { what, status: r.status, json };
}

/**
 * One round of traffic: every tier's interactions and every kind of refusal. Returns what
 * each request got, so the caller can check the workload really did what it says.
 */
export async function workloadRound(base: string, n: number): Promise<Sent[]> {
  const out: Sent[] = [];
  const patient = { resourceType: 'Patient', name: [{ family: `Dashboard${n}`, given: ['Test'] }], gender: 'female', birthDate: '1980-01-01' };
  const created = await send(base, 'create', 'POST', '/Patient', patient);
  out.push(created);
  const id = created.json?.id ?? 'missing';
  out.push(await send(base, 'read', 'GET', `/Patient/${id}`));
  out.push(await send(base, 'search', 'GET', `/Patient?family=Dashboard${n}`));
  out.push(await send(base, 'capabilities', 'GET', '/metadata'));
  out.push(await send(base, 'update', 'PUT', `/Patient/${id}`, { ...patient, id, active: true }));
  out.push(await send(base, 'history', 'GET', `/Patient/${id}/_history`));
  out.push(
    await send(base, 'transaction', 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'dashboard' }, subject: { reference: `Patient/${id}` } }, request: { method: 'POST', url: 'Observation' } }],
    }),
  );
  out.push(await send(base, '$validate', 'POST', '/Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }] }));
  // Refusals: policy (delete is denied), unknown type, bad id, bad JSON, wrong content type.
  out.push(await send(base, 'refuse-delete', 'DELETE', `/Patient/${id}`));
  out.push(await send(base, 'refuse-type', 'GET', '/NotAResource/1'));
  out.push(await send(base, 'refuse-id', 'GET', `/Patient/${'x'.repeat(65)}`));
  out.push(await send(base, 'refuse-json', 'POST', '/Patient', '{"resourceType": "Patient",', 'application/fhir+json'));
  out.push(await send(base, 'refuse-content-type', 'POST', '/Patient', 'name=x', 'text/plain'));
  return out.map(({ what, status }) => ({ what, status }));
}

export interface AttackReport {
  /** What each attack did, for the test's assertions and its failure messages. */
  steps: Array<{ what: string; result: string }>;
}

/**
 * Attacks on the running system's workers (`up` as root only): a program started inside a
 * serving read worker's container (runc exec joins its cgroup, namespaces and seccomp
 * profile), which the read tier's eBPF serve policy kills at its first syscall outside the
 * serve set; the same in the audit-mode ops tier, counted instead, where the program then
 * opens a TCP connection that the egress hook counts as a denial (audit: not refused); and
 * a write worker killed outright, which the agent restarts.
 */
export async function attack(system: RunningSystem): Promise<AttackReport> {
  const { AgentClient } = await import('../../src/agent-api/client');
  const { execFile } = await import('node:child_process');
  const stateDir = system.stateDir as string;
  const client = new AgentClient(join(stateDir, 'agent.sock'));
  const steps: AttackReport['steps'] = [];
  const serving = async (tier: string) =>
    waitFor(`a serving ${tier} worker`, async () => (await client.workers()).find((w) => w.tier === tier && w.state === 'serving' && w.pid !== null), 120_000, 250);
  const runcExec = (id: string, argv: string[]) =>
    new Promise<string>((resolve) => {
      execFile('runc', ['--root', join(stateDir, 'runc'), 'exec', id, ...argv], { timeout: 30_000 }, (err, stdout, stderr) => {
        resolve(err ? `exit ${(err as NodeJS.ErrnoException & { code?: number }).code ?? ''} ${(err as { signal?: string }).signal ?? ''} ${stderr.trim().slice(-300)}` : `exit 0 ${stdout.trim()}`);
      });
    });
  const read = await serving('read');
  // The container holds only what a worker needs: node is the one program there is to run.
  steps.push({ what: `exec node in read worker ${read.id}`, result: await runcExec(read.id, [process.execPath, '-e', '0']) });
  const ops = await serving('ops');
  steps.push({
    what: `TCP connect from ops worker ${ops.id}`,
    result: await runcExec(ops.id, [process.execPath, '-e', "require('net').connect(9, '127.0.0.1').on('error', (e) => { console.log(e.code); process.exit(0); })"]),
  });
  const write = await serving('write');
  process.kill(write.pid as number, 'SIGKILL');
  steps.push({ what: `SIGKILL write worker ${write.id} (pid ${write.pid})`, result: 'sent' });
  await waitFor('the killed write worker to be restarted', async () => (await client.workers()).find((w) => w.id === write.id && w.restarts > 0 && w.state === 'serving'), 120_000, 250);
  steps.push({ what: `write worker ${write.id} restarted`, result: 'serving again' });
  return { steps };
}
