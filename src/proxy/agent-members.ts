// Keeps the pools of agent-run tiers in step with the agent: a worker joins its tier's
// pool when it is serving (healthy and under its serve-phase policy) and leaves it the
// moment the agent reports it otherwise, so the proxy never waits for a failed health
// check to stop routing to a dead worker. A worker whose start the agent refused (its tier
// failed the signed-statement check or the image scan gate) makes the tier's 503 say so.

import type { Logger } from 'pino';
import { AgentClient, routable, type WorkerInfo } from '../agent-api/client';
import { describeRefusal } from '../trust/reasons';
import type { UpstreamPools } from './pool';

/** Why a tier's workers are down, from the last exits the agent reported: what a profile killed, and in which phase. */
export function describeDown(workers: readonly WorkerInfo[]): string | undefined {
  const killed = workers.find((w) => w.lastExit?.violations?.length);
  if (killed?.lastExit?.violations) {
    const e = killed.lastExit;
    return `worker ${killed.id} was stopped by its profile in its ${e.phase ?? 'boot'} phase at ${e.violations!.join(', ')}`;
  }
  const failed = workers.find((w) => w.lastExit);
  if (failed?.lastExit)
    return `worker ${failed.id} ${failed.lastExit.phase === 'serve' ? 'exited' : 'did not start'} (status ${failed.lastExit.code ?? failed.lastExit.signal}); the agent restarts it`;
  return undefined;
}

export function followAgent(client: AgentClient, pools: UpstreamPools, tiers: readonly string[], log: Logger): { stop(): void } {
  const workers = new Map<string, WorkerInfo>();
  const managed = new Set(tiers);
  const sync = (tier: string): void => {
    const pool = pools.get(tier);
    if (!pool) return;
    const mine = [...workers.values()].filter((w) => w.tier === tier);
    pool.setUpstreams(
      mine
        .filter(routable)
        .map((w) => w.address)
        .sort(),
    );
    const refused = mine.find((w) => w.state === 'refused' && w.refusal);
    pool.unavailable = refused?.refusal ? describeRefusal(refused.refusal.check, refused.refusal.reason) : undefined;
    pool.down = mine.some(routable) ? undefined : describeDown(mine);
  };
  return client.watch(
    (w) => {
      if (!managed.has(w.tier)) return;
      const before = workers.get(w.id);
      workers.set(w.id, w);
      if (
        !before ||
        before.state !== w.state ||
        before.address !== w.address ||
        before.refusal?.reason !== w.refusal?.reason ||
        before.lastExit?.violations?.join() !== w.lastExit?.violations?.join()
      ) {
        log[w.state === 'refused' ? 'warn' : 'info'](
          { tier: w.tier, worker: w.id, state: w.state, restarts: w.restarts, ...(w.state === 'refused' && w.refusal ? { refusal: w.refusal.reason } : {}) },
          w.state === 'refused' && w.refusal ? `worker state: refused by the agent: ${describeRefusal(w.refusal.check, w.refusal.reason)}` : 'worker state',
        );
        sync(w.tier);
      }
    },
    {
      onDisconnect: (err) => {
        // Workers keep serving while the agent restarts; their pools keep their members
        // and health checks until the agent is back and says otherwise.
        log.warn({ err }, 'lost the agent; retrying');
      },
    },
  );
}
