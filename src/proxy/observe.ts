// What one finished request adds to the metrics and the log: its outcome by tier,
// interaction and resource type, its total and upstream time, and the proxy's own share
// (total minus upstream), the overhead operators watch.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { Outcome, ProxyMetrics } from '../metrics/registry';

function outcomeOf(status: number, refused: boolean, upstreamFailed: boolean): Outcome {
  if (refused) return 'refused';
  if (upstreamFailed) return 'upstream-error';
  if (status >= 500) return 'server-error';
  if (status >= 400) return 'client-error';
  return 'success';
}

export function observeResponse(request: FastifyRequest, reply: FastifyReply, metrics: ProxyMetrics): void {
  const state = request.fhirguard;
  if (!state) return;
  const end = performance.now();
  const total = (end - state.start) / 1000;
  const tier = state.tier?.name;
  const kind = state.interaction?.kind;
  const status = reply.statusCode;
  metrics.requestCell(tier, kind, state.interaction?.resourceType, outcomeOf(status, state.refused, state.upstreamFailed)).inc();
  metrics.durationCell(tier, kind).observe(total);
  let upstream = 0;
  if (state.upstreamStart > 0 && tier !== undefined) {
    upstream = (end - state.upstreamStart) / 1000;
    metrics.upstreamCell(tier).observe(upstream);
    metrics.stage('proxy').observe(Math.max(0, total - upstream));
  }
  {
    request.log.info(
      {
        method: request.method,
        status,
        tier,
        interaction: kind,
        type: state.interaction?.resourceType,
        ms: Math.round(total * 1e4) / 10,
        upstreamMs: Math.round(upstream * 1e4) / 10,
      },
      'request',
    );
  }
}
