// `fhirguard proxy --processes N` (N > 1): the supervisor checks the policy as a single proxy
// would (refusing to start on any problem), binds the FHIR listener, starts the N proxy
// processes (supervisor.ts), keeps the audit trail they hand it, and serves the public admin
// listener: /metrics aggregated over its processes with prom-client's aggregation (one
// coherent set: counts summed, facts said once), /readyz per process, POST /reload relayed to
// every process once the supervisor's own check of the file passed.

import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { AggregatorRegistry, collectDefaultMetrics, Registry } from 'prom-client';
import { AgentClient } from '../../agent-api/client';
import { askReload, type ReloadAnswer } from '../../agent-api/reload';
import { AuditSink } from '../../audit/sink';
import { AuditTrail } from '../../audit/trail';
import { createAdminServer } from '../../metrics/admin';
import { registerBuildInfo } from '../../metrics/build-info';
import { registerEnforcementMetrics } from '../../metrics/enforcement';
import { loadPolicy, PolicyError } from '../../policy';
import { formatHostPort, parseHostPort } from '../address';
import { AgentAudit } from '../agent-audit';
import { checkStartOptions, type RunningProxy } from '../run';
import { childArgs } from './child-args';
import { bindShared } from './shared-listener';
import { ProxySupervisor } from './supervisor';

type Values = Record<string, string | boolean | string[] | undefined>;

/** Environment a child must not read: what the supervisor keeps for itself. */
const KEPT_ENV = ['FHIRGUARD_LISTEN', 'FHIRGUARD_ADMIN', 'FHIRGUARD_PROCESSES', 'FHIRGUARD_AUDIT_DIR', 'FHIRGUARD_AUDIT_SINK'];

async function childJson(admin: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${admin}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json() };
}

export async function runSupervisor(values: Values, count: number, bin: string, log: Logger): Promise<RunningProxy | number> {
  const checked = checkStartOptions(values, log);
  if (checked === 2) return 2;
  const { policy, base, listen, adminAt, tls } = checked;
  let listener;
  try {
    listener = await bindShared(listen.host, listen.port);
  } catch (err) {
    log.fatal({ err }, `cannot listen: ${(err as Error).message}`);
    return 1;
  }

  const registry = new Registry();
  registerBuildInfo(registry, 'proxy');
  collectDefaultMetrics({ register: registry });
  const agentSocket = typeof values.agent === 'string' ? path.resolve(values.agent) : undefined;
  const agentClient = agentSocket ? new AgentClient(agentSocket) : undefined;
  if (agentClient) {
    registerEnforcementMetrics(
      registry,
      agentClient,
      policy.tiers.map((t) => t.name),
      (err) => log.warn({ err }, 'reading enforcement state from the agent failed'),
    );
  }
  const auditDir = typeof values['audit-dir'] === 'string' ? path.resolve(values['audit-dir']) : undefined;
  const trail = auditDir ? new AuditTrail({ dir: auditDir, registry, log }) : undefined;
  const handover = !trail && agentClient ? new AgentAudit(agentClient, log, registry) : undefined;
  if (!trail && !handover) log.warn('no audit trail: neither --audit-dir nor --agent is set, so who read which patient is not recorded (docs/audit.md)');
  const sink = auditDir && typeof values['audit-sink'] === 'string' ? new AuditSink({ dir: auditDir, base: values['audit-sink'], registry, log }) : undefined;
  sink?.start();

  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !KEPT_ENV.includes(k)));
  const supervisor = new ProxySupervisor({
    count,
    command: [process.execPath, bin, 'proxy', ...childArgs(values, trail !== undefined || handover !== undefined)],
    listenerFd: listener.fd,
    env,
    log,
    registry,
    audit: (events) => {
      for (const e of events) (trail ?? handover)?.append(e);
    },
  });
  supervisor.start();

  // What replaced processes had counted, as of the last scrape that reached them: their
  // counters and histograms stay in the sums, so a replacement never makes a total go down.
  type MetricJson = { type: string };
  const lastSeen = new Map<number, MetricJson[]>();
  let retired: MetricJson[] = [];
  const aggregated = async (): Promise<string> => {
    const own = await registry.getMetricsAsJSON();
    const live = supervisor.admins();
    for (const [pid, last] of lastSeen) {
      if (live.some((c) => c.pid === pid)) continue;
      lastSeen.delete(pid);
      const counts = last.filter((m) => m.type === 'counter' || m.type === 'histogram');
      retired = (await AggregatorRegistry.aggregate([retired, counts] as never).getMetricsAsJSON()) as unknown as MetricJson[];
    }
    const children = await Promise.all(
      live.map((c) =>
        childJson(c.admin, '/metrics.json').then(
          (r) => {
            lastSeen.set(c.pid, r.body as MetricJson[]);
            return r.body as MetricJson[];
          },
          (err: Error) => {
            log.warn({ err, pid: c.pid }, 'a proxy process did not give its metrics');
            return lastSeen.get(c.pid) ?? [];
          },
        ),
      ),
    );
    return AggregatorRegistry.aggregate([own, retired, ...children] as never).metrics();
  };
  let inForce = { file: policy.file, digest: policy.digest };
  const reload = async (): Promise<ReloadAnswer> => {
    try {
      loadPolicy(policy.file);
    } catch (err) {
      return { result: 'refused', error: err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message, policy: inForce };
    }
    const answers = await Promise.all(
      supervisor
        .admins()
        .map((c) => askReload(parseHostPort(c.admin), '/reload').catch((err: Error): ReloadAnswer => ({ result: 'refused', error: `process ${c.pid}: ${err.message}`, policy: inForce }))),
    );
    const refused = answers.find((a) => a.result === 'refused');
    if (refused) return refused;
    const digests = new Set(answers.map((a) => a.policy.digest));
    if (digests.size !== 1)
      return { result: 'refused', error: `the processes put different policies in force (${[...digests].join(', ')}): the file changed during the reload; reload again`, policy: inForce };
    inForce = answers[0].policy;
    return { result: answers.some((a) => a.result === 'applied') ? 'applied' : 'unchanged', policy: inForce };
  };
  const admin = createAdminServer({
    registry,
    log,
    metrics: aggregated,
    readiness: async () => {
      const processes = await Promise.all(
        supervisor.admins().map((c) =>
          childJson(c.admin, '/readyz').then(
            (r) => ({ pid: c.pid, ready: r.status === 200, ...(r.body as object) }),
            () => ({ pid: c.pid, ready: false }),
          ),
        ),
      );
      return { ready: processes.some((p) => p.ready), processes };
    },
    reload,
  });

  if (!(await supervisor.listening(120_000))) log.warn('not every proxy process listens yet; the others serve');
  try {
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      admin.listen(adminAt.port, adminAt.host, () => resolve());
    });
  } catch (err) {
    log.fatal({ err }, `cannot listen: ${(err as Error).message}`);
    await supervisor.stop();
    listener.close();
    return 1;
  }
  const adminAddress = formatHostPort({ host: (admin.address() as AddressInfo).address, port: (admin.address() as AddressInfo).port });
  const fhirUrl = `${tls ? 'https' : 'http'}://${formatHostPort({ host: listener.address, port: listener.port })}${base}`;
  log.info({ fhir: fhirUrl, admin: adminAddress, processes: count }, 'fhirguard proxy listening');
  return {
    fhirUrl,
    adminAddress,
    reload,
    async close() {
      await supervisor.stop();
      listener.close();
      // Every event the processes handed over is on disk (or with the agent) before the supervisor says it stopped.
      await trail?.close();
      await handover?.flush();
      await sink?.stop();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      log.info('fhirguard proxy stopped');
    },
  };
}
