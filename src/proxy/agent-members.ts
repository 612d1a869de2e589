// Keeps the pools of agent-run tiers in step with the agent: a worker joins its tier's
// pool when it is serving (healthy and under its serve-phase policy) and leaves it the
// moment the agent reports it otherwise, so the proxy never waits for a failed health
// check to stop routing to a dead worker. A worker whose start the agent refused (its tier
// failed the signed-statement check or the image scan gate) makes the tier's 503 say so.

import type { Logger } from 'pino';
import { AgentClient, routable, type WorkerInfo } from '../agent-api/client';
import { describeRefusal } from '../trust/reasons';
import type { UpstreamPools } from './pool';

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
  };
  return client.watch(
    (w) => {
      if (!managed.has(w.tier)) return;
      const before = workers.get(w.id);
      workers.set(w.id, w);
      if (!before || before.state !== w.state || before.address !== w.address || before.refusal?.reason !== w.refusal?.reason) {
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
