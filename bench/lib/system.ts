// A whole fhirguard system for benchmarks: `fhirguard agent` (root for containers) running the
// policy's workers at one level of enforcement, and `fhirguard proxy` fed by it. Several run
// side by side on one database, each on a state directory of its own, so runs can alternate
// between them. The level is what the agent reports (GET /enforcement), checked, not assumed.

import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AgentClient, type EnforcementReport, type WorkerInfo } from '../../src/agent-api/client';
import { freePort, spawnLogged, stop, waitFor } from './procs';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const BIN = path.join(ROOT, 'bin', 'fhirguard');

export type Enforcement = 'unconfined' | 'seccomp' | 'seccomp+ebpf';
export const ENFORCEMENTS: Enforcement[] = ['unconfined', 'seccomp', 'seccomp+ebpf'];

const AGENT_ARGS: Record<Enforcement, string[]> = {
  // No runc: the agent runs the workers as plain processes (its degraded mode).
  unconfined: ['--runc', '/nonexistent/runc'],
  seccomp: ['--without-ebpf'],
  'seccomp+ebpf': [],
};

export interface SystemOptions {
  enforcement: Enforcement;
  /** The benchmark's directory: the state directory goes below it. */
  dir: string;
  /** The database every system shares. */
  db: string;
  /** Policy file for agent and proxy (default: the shipped one). */
  policy?: string;
  /** taskset CPU list for agent (hence plain workers) and proxy. */
  cpus?: string | null;
  proxyLogLevel?: string;
  /** What the system is called in messages. */
  name?: string;
}

export interface System {
  enforcement: Enforcement;
  /** e.g. http://127.0.0.1:PORT/fhir */
  url: string;
  proxy: ChildProcess;
  agent: ChildProcess;
  client: AgentClient;
  stateDir: string;
  workers(): Promise<WorkerInfo[]>;
  /** The workers' pids (container pids as the host sees them). */
  workerPids(): Promise<number[]>;
  enforcementReport(): Promise<EnforcementReport>;
  stop(): Promise<void>;
}

async function waitAllServing(client: AgentClient, agent: ChildProcess): Promise<void> {
  await waitFor('agent workers', async () => {
    if (agent.exitCode !== null) throw new Error('agent exited');
    const ws = await client.workers();
    return ws.length > 0 && ws.every((w) => w.state === 'serving');
  });
  if (agent.exitCode !== null) throw new Error('the agent exited during start');
}

/** Containers the agent left in its own runc root (it removes them itself on SIGTERM; this is
 * the net for an agent that had to be killed). Touches no other runc root. */
function deleteLeftContainers(stateDir: string): void {
  const root = path.join(stateDir, 'runc');
  if (!existsSync(root)) return;
  const list = spawnSync('runc', ['--root', root, 'list', '-q'], { encoding: 'utf8' });
  for (const id of (list.stdout ?? '').split('\n').filter(Boolean)) spawnSync('runc', ['--root', root, 'delete', '-f', id]);
}

/** Kills plain-process workers an agent left (degraded mode: they are its children, but a
 * killed agent does not take them along): only pids this system reported whose command line
 * still names its state directory. */
function killLeftWorkers(pids: number[], stateDir: string): void {
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(stateDir)) continue;
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export async function startSystem(o: SystemOptions): Promise<System> {
  const name = o.name ?? `fhirguard ${o.enforcement}`;
  const stateDir = path.join(o.dir, `state-${o.enforcement.replace('+', '-')}`);
  const socket = path.join(stateDir, 'agent.sock');
  const policyArgs = o.policy ? ['--policy', o.policy] : [];
  const agent = spawnLogged(
    `${name}: agent`,
    process.execPath,
    [BIN, 'agent', '--state-dir', stateDir, '--db', o.db, '--socket', socket, '--log-level', 'warn', ...policyArgs, ...AGENT_ARGS[o.enforcement]],
    {
      cpus: o.cpus,
      stdout: 'ignore',
    },
  );
  const client = new AgentClient(socket, 5000);
  let lastPids: number[] = [];
  const stopAgent = async (): Promise<void> => {
    lastPids = (await client.workers().catch(() => [] as WorkerInfo[])).map((w) => w.pid).filter((p): p is number => !!p);
    await stop(agent, 30_000);
    if (o.enforcement === 'unconfined') killLeftWorkers(lastPids, stateDir);
    else deleteLeftContainers(stateDir);
  };
  try {
    await waitAllServing(client, agent);
  } catch (err) {
    await stopAgent();
    throw new Error(`${name}: ${(err as Error).message}`);
  }
  const [listen, admin] = [await freePort(), await freePort()];
  const proxy = spawnLogged(
    `${name}: proxy`,
    process.execPath,
    [BIN, 'proxy', '--agent', socket, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--processes', '1', '--log-level', o.proxyLogLevel ?? 'warn', ...policyArgs],
    { cpus: o.cpus },
  );
  proxy.stdout!.resume();
  const url = `http://127.0.0.1:${listen}/fhir`;
  try {
    // The proxy learns its members from the agent: ready once every tier has a healthy one.
    await waitFor(`${name}: proxy`, async () => {
      if (proxy.exitCode !== null) throw new Error('proxy exited');
      return (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200;
    });
  } catch (err) {
    await stop(proxy);
    await stopAgent();
    throw err;
  }
  const workers = (): Promise<WorkerInfo[]> => client.workers();
  return {
    enforcement: o.enforcement,
    url,
    proxy,
    agent,
    client,
    stateDir,
    workers,
    workerPids: async () => (await workers()).map((w) => w.pid).filter((p): p is number => !!p),
    enforcementReport: () => client.enforcement(),
    stop: async () => {
      await stop(proxy);
      await stopAgent();
    },
  };
}

/** Why `report` is not the enforcement `want` (every running tier must have it), or null. */
export function enforcementMismatch(want: Enforcement, report: EnforcementReport): string | null {
  const problems: string[] = [];
  for (const t of report.tiers) {
    if (t.status !== 'running') {
      problems.push(`tier ${t.tier}: ${t.status}${t.reason ? ` (${t.reason})` : ''}`);
      continue;
    }
    const { seccomp, ebpf } = t.mechanisms;
    if (want === 'unconfined') {
      if (t.confinement !== 'process') problems.push(`tier ${t.tier}: confinement ${t.confinement}, expected plain processes`);
      continue;
    }
    if (t.confinement !== 'container') problems.push(`tier ${t.tier}: no containers (${seccomp.reason})`);
    else if (!seccomp.active) problems.push(`tier ${t.tier}: seccomp inactive (${seccomp.reason})`);
    if (want === 'seccomp+ebpf' && !ebpf.active) problems.push(`tier ${t.tier}: eBPF inactive (${ebpf.reason})`);
    if (want === 'seccomp' && ebpf.active) problems.push(`tier ${t.tier}: eBPF active, expected without`);
  }
  return problems.length ? problems.join('; ') : null;
}
