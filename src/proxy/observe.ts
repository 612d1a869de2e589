// What one finished request adds to the metrics and the log: its outcome by tier,
// interaction and resource type, its total and upstream time, and the proxy's own share
// (total minus upstream), the overhead operators watch.

import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Outcome, ProxyMetrics } from '../metrics/registry';
import { auditRecordOf, type AuditDestination } from './audit-record';
import { RequestState, requestState } from './request-state';

const NO_STATE: Readonly<RequestState> = Object.freeze(new RequestState());

/** The status a request whose client left before its answer is audited with (nginx's 499). */
const CLIENT_CLOSED_STATUS = 499;

function outcomeOf(status: number, refused: boolean, upstreamFailed: boolean): Outcome {
  if (refused) return 'refused';
  if (upstreamFailed) return 'upstream-error';
  if (status >= 500) return 'server-error';
  if (status >= 400) return 'client-error';
  return 'success';
}

export function observeResponse(request: FastifyRequest, reply: FastifyReply, metrics: ProxyMetrics): void {
  // A request that ended before the pipeline (a path the router could not decode, say) has no state.
  const state = request.fhirguard ?? NO_STATE;
  if (state.clientClosed) return; // counted once, by observeClientClosed
  // From Fastify's start of the request (before its body was read) to its response's end.
  const total = reply.elapsedTime / 1000;
  const tier = state.tier?.name;
  const kind = state.interaction?.kind;
  const status = reply.statusCode;
  metrics.requestCell(tier, kind, state.interaction?.resourceType, outcomeOf(status, state.refused, state.upstreamFailed)).inc();
  metrics.durationCell(tier, kind).observe(total);
  let upstream = 0;
  if (state.upstreamStart > 0 && tier !== undefined) {
    upstream = Math.min(total, (performance.now() - state.upstreamStart) / 1000);
    metrics.upstreamCell(tier).observe(upstream);
    metrics.stage('proxy').observe(Math.max(0, total - upstream));
  }
  // The line is built only when it is written (the production level, warn, leaves it off).
  if ((request.log as Logger).isLevelEnabled('info')) {
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

/**
 * Fastify's call at the end of every response, used for fhirguard's own line and metrics in
 * place of an onResponse hook. Fastify makes it on the response's 'finish' (or 'error')
 * whenever the app has a logger, which the proxy always has; an onResponse hook would add
 * its hook runner to every request on top. Fastify's own per-request lines stay off.
 */
export class ObservingLogController extends LogController {
  constructor(
    private readonly metrics: ProxyMetrics,
    /** With auditing: where each finished request's record goes, and the FHIR base. */
    private readonly audit?: { to: AuditDestination; base: string },
  ) {
    super({ disableRequestLogging: true });
  }

  override requestCompleted(_error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    observeResponse(request, reply, this.metrics);
    // A client that left was audited when it left (observeClientClosed).
    if (this.audit && !request.fhirguard?.clientClosed) this.audit.to.record(auditRecordOf(request, reply.statusCode, reply.elapsedTime, this.audit.base, false));
  }
}

/**
 * A connection that closed before its response was complete (from Fastify's abort hook, on
 * the request's 'close' when it was aborted, and from the read streamer, whose client left
 * mid-body; counted once when both see it). Mostly a client that hung up
 * (nginx's 499): counted with outcome client-closed and logged at info, with whether the
 * request had reached an upstream (a write that had may have been applied; the client will
 * not know). The other cause is fhirguard cutting the connection because the upstream broke
 * off a response under way: that one counts as upstream-error (and was logged when it broke).
 */
export function observeClientClosed(request: FastifyRequest, metrics: ProxyMetrics, audit?: { to: AuditDestination; base: string }): void {
  const state = requestState(request);
  if (state.clientClosed) return;
  state.clientClosed = true;
  // A write that reached an upstream may have been applied although the client never heard.
  if (audit) audit.to.record(auditRecordOf(request, CLIENT_CLOSED_STATUS, 0, audit.base, true));
  const tier = state.tier?.name;
  const kind = state.interaction?.kind;
  metrics.requestCell(tier, kind, state.interaction?.resourceType, state.upstreamFailed ? 'upstream-error' : 'client-closed').inc();
  if (state.upstreamFailed) return;
  request.log.info(
    { method: request.method, tier, interaction: kind, type: state.interaction?.resourceType, forwarded: state.upstreamStart > 0 },
    'client closed the connection before the response was complete',
  );
}
