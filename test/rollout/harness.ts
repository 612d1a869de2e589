// The system a rollout test runs: a real agent (root, runc, eBPF) and a real proxy reading
// its API, both from the compiled CLI, and `fhirguard rollout` run as the operator runs it.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { WorkerInfo } from '../../src/agent-api/client';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { FHIRGUARD } from '../helpers/confined';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';
import { send } from '../helpers/http-client';
import { poll } from '../helpers/poll';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface System {
  agent: AgentProcess;
  proxy: ProxyProcess;
  /** Every worker state change the agent reported since the start. */
  events: WorkerInfo[];
  rollout(args: string[]): Promise<CliRun>;
  stop(): Promise<void>;
}

/** Starts the agent (the shipped tiers: 4 workers) and a proxy on `policy` (YAML text). */
export async function startSystem(dir: string, policyFile: string, policyText: string, agentArgs: string[] = []): Promise<System> {
  const agent = await startAgent(dir, ['--policy', policyFile, ...agentArgs]);
  let proxy: ProxyProcess;
  try {
    await waitWorkers(agent.client, (ws) => ws.length === 4 && allServing(ws), 120_000, agent.log);
    proxy = await startProxy({ dir, policy: policyText, args: ['--agent', agent.socketPath] });
    await waitReadyz(proxy, 200, 60_000);
  } catch (err) {
    await agent.stop();
    throw err;
  }
  const events: WorkerInfo[] = [];
  const watch = agent.client.watch((w) => events.push(w));
  const p = proxy;
  return {
    agent,
    proxy: p,
    events,
    rollout: (args) =>
      new Promise((resolve, reject) => {
        const child = spawn(FHIRGUARD, ['rollout', '--state-dir', agent.stateDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stdout, stderr }));
      }),
    stop: async () => {
      // FHIRGUARD_ROLLOUT_LOG=<file>: keep the agent's log (and its workers') for a look.
      if (process.env.FHIRGUARD_ROLLOUT_LOG) writeFileSync(process.env.FHIRGUARD_ROLLOUT_LOG, agent.log());
      watch.stop();
      await p.stop();
      await agent.stop();
    },
  };
}

/** afterAll safety net. */
export async function reapSystems(): Promise<void> {
  await stopAllProxies();
  killLeftoverAgents();
}

export const tierOf = (ws: WorkerInfo[], tier: string): WorkerInfo[] => ws.filter((w) => w.tier === tier).sort((a, b) => a.id.localeCompare(b.id));

/** The addresses of workers, as the proxy's pool names its members, sorted. */
export const addresses = (ws: WorkerInfo[]): string[] => ws.map((w) => w.address).sort();

/**
 * The members the proxy sends a tier's requests to now (its /readyz `up`), sorted. Each
 * sample is asked on a connection of its own: a kept-alive one can be closed by the admin
 * listener's idle timeout just as a sample is sent on it ("other side closed"), which twice
 * failed a rollout test in CI while the host was busy starting containers.
 */
export async function poolOf(proxy: ProxyProcess, tier: string): Promise<string[]> {
  const body = (await send(proxy.adminUrl, 'GET', '/readyz', { fresh: true })).json as { tiers: Array<{ tier: string; up: string[] }> };
  return [...(body.tiers.find((t) => t.tier === tier)?.up ?? [])].sort();
}

/**
 * Samples the proxy's pool of `tier` every 50 ms until stop(), which resolves with every
 * distinct pool seen, in order: what the proxy routed to, step by step, during a rollout.
 * stop(settled): first waits (up to 5 s) for the pool to be `settled`, the proxy reading the
 * agent's last events.
 */
export function watchPool(proxy: ProxyProcess, tier: string): { stop(settled?: string[]): Promise<string[][]> } {
  const seen: string[][] = [];
  let stopping = false;
  const last = (): string => JSON.stringify(seen[seen.length - 1]);
  const loop = (async () => {
    while (!stopping) {
      const up = await poolOf(proxy, tier);
      if (JSON.stringify(up) !== last()) seen.push(up);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stop: async (settled) => {
      // Settled or not after 5 s, the samples so far are what the caller checks.
      if (settled) await poll('the pool to settle', () => last() === JSON.stringify(settled), { timeoutMs: 5000 }).catch(() => undefined);
      stopping = true;
      await loop;
      return seen;
    },
  };
}

/**
 * What a pool's samples (watchPool) must show of a switch from `from` to `to`: it starts at
 * `from`, is never empty, holds every member of `to` before it loses any of `from` (the new
 * workers get traffic before an old one is drained), and ends at `to`.
 */
export function expectSwitch(seen: string[][], from: string[], to: string[]): void {
  const allNew = seen.findIndex((s) => to.every((a) => s.includes(a)));
  const oldLeft = seen.findIndex((s) => from.some((a) => !s.includes(a)));
  expect({ first: seen[0], empty: seen.filter((s) => s.length === 0).length, newBeforeOldLeft: allNew >= 0 && allNew <= oldLeft, last: seen[seen.length - 1], seen }).toEqual({
    first: from,
    empty: 0,
    newBeforeOldLeft: true,
    last: to,
    seen,
  });
}

/** What a rollback must show of the pool: the old workers in it all along, and at the end only they. */
export function expectKept(seen: string[][], old: string[]): void {
  expect({ oldLeft: seen.filter((s) => old.some((a) => !s.includes(a))), last: seen[seen.length - 1] }).toEqual({ oldLeft: [], last: old });
}

/** Resolves with the first worker event from index `since` on that matches. */
export async function nextEvent(sys: System, since: number, pred: (w: WorkerInfo) => boolean, timeoutMs = 60_000): Promise<WorkerInfo> {
  return poll('a matching worker event', () => sys.events.slice(since).find(pred), { timeoutMs, intervalMs: 20, detail: () => `last: ${JSON.stringify(sys.events.slice(-5))}` });
}
