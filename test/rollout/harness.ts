// The system a rollout test runs: a real agent (root, runc, eBPF) and a real proxy reading
// its API, both from the compiled CLI, and `fhirguard rollout` run as the operator runs it.

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { WorkerInfo } from '../../src/agent/client';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { FHIRGUARD } from '../helpers/confined';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';

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
