// Starting and stopping the proxy process: load and check the policy (refuse to start on
// any error), warm the FHIR tables so the first request pays nothing, open the tier pools
// (fed by the agent for agent-run tiers), then the FHIR and admin listeners.

import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { AgentClient } from '../agent-api/client';
import { loadSearchParameters } from '../fhir/search-parameters';
import { preloadValidator } from '../fhir/validate';
import { createAdminServer } from '../metrics/admin';
import { registerEnforcementMetrics } from '../metrics/enforcement';
import { ProxyMetrics } from '../metrics/registry';
import { loadPolicy, PolicyError, type Policy } from '../policy';
import { AgentAudit } from './agent-audit';
import { followAgent } from './agent-members';
import { formatHostPort, parseHostPort } from './address';
import { AuditSink } from '../audit/sink';
import { AuditTrail } from '../audit/trail';
import { SmartConfiguration } from '../auth/smart-configuration';
import type { TokenVerifier } from '../auth/tokens';
import { CapabilitySource } from './capability-source';
import { normaliseBase, positiveInt, PROXY_OPTIONS } from './options';
import { UpstreamPools } from './pool';
import type { ReloadAnswer } from '../agent-api/reload';
import { PolicyReload } from './policy-reload';
import { SupervisorAudit, type ChildMessage } from './processes/audit-handover';
import { SUPERVISED_FHIR_FD } from './processes/child-args';
import { buildProxy } from './server';
import type { ConnectionLimits } from './connection-limits';
import { holdTickObjectShape } from './tick-shape';
import { TlsListener, tlsSettings } from './tls-listener';
import { warmHttpClient } from './warm-up';

type Values = Record<string, string | boolean | string[] | undefined>;

export interface RunningProxy {
  fhirUrl: string;
  adminAddress: string;
  /** Reads the policy file again and puts it in force when it is good (policy-reload.ts). */
  reload(): Promise<ReloadAnswer>;
  close(): Promise<void>;
}

/** The proxy's options, checked, and its policy, loaded: what a proxy and a supervisor start with. */
export interface StartOptions {
  policy: Policy;
  base: string;
  bodyLimit: number;
  maxDepth: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  connections: ConnectionLimits;
  /** HTTPS on the FHIR listener (its files loaded and checked); undefined: plain HTTP. */
  tls: TlsListener | undefined;
  listen: { host: string; port: number };
  adminAt: { host: string; port: number };
}

/** The start options, or exit status 2 once the reason is logged and said on stderr. */
export function checkStartOptions(values: Values, log: Logger): StartOptions | 2 {
  try {
    if (values['audit-sink'] !== undefined && values['audit-dir'] === undefined) throw new Error('--audit-sink delivers the audit trail: it needs --audit-dir');
    // Callers that start a proxy of their own (record) may leave the timeouts out: the defaults then.
    const headersTimeoutMs = positiveInt(values['headers-timeout'] ?? PROXY_OPTIONS['headers-timeout'].default, 'headers-timeout');
    const requestTimeoutMs = positiveInt(values['request-timeout'] ?? PROXY_OPTIONS['request-timeout'].default, 'request-timeout');
    if (requestTimeoutMs < headersTimeoutMs) throw new Error('--request-timeout must be at least --headers-timeout');
    const policy = loadPolicy(path.resolve(String(values.policy)));
    const tlsAt = tlsSettings(values);
    if (policy.matchesCertificates && tlsAt?.clientCa === undefined)
      throw new Error(`rules in ${policy.file} match client certificates (certificates:), which only an HTTPS listener with --tls-client-ca verifies`);
    return {
      base: normaliseBase(values.base),
      bodyLimit: positiveInt(values['body-limit'], 'body-limit'),
      maxDepth: positiveInt(values['max-depth'], 'max-depth'),
      headersTimeoutMs,
      requestTimeoutMs,
      connections: {
        keepAliveTimeoutMs: positiveInt(values['keep-alive-timeout'] ?? PROXY_OPTIONS['keep-alive-timeout'].default, 'keep-alive-timeout'),
        idleTimeoutMs: positiveInt(values['idle-timeout'] ?? PROXY_OPTIONS['idle-timeout'].default, 'idle-timeout'),
        max: positiveInt(values['max-connections'] ?? PROXY_OPTIONS['max-connections'].default, 'max-connections'),
        maxPerAddress: positiveInt(values['max-connections-per-address'] ?? PROXY_OPTIONS['max-connections-per-address'].default, 'max-connections-per-address'),
      },
      listen: parseHostPort(String(values.listen), '--listen'),
      adminAt: parseHostPort(String(values.admin), '--admin'),
      policy,
      tls: tlsAt && new TlsListener(tlsAt, log),
    };
  } catch (err) {
    const message = err instanceof PolicyError ? `policy rejected:\n${err.message}` : (err as Error).message;
    log.fatal(message);
    process.stderr.write(`fhirguard proxy: ${message}\n`);
    return 2;
  }
}

/** Starts the proxy; returns an exit status instead when it cannot start (the reason is logged). */
export async function runProxy(values: Values, log: Logger): Promise<RunningProxy | number> {
  const checked = checkStartOptions(values, log);
  if (checked === 2) return 2;
  const { policy, base, bodyLimit, maxDepth, headersTimeoutMs, requestTimeoutMs, connections, tls, listen, adminAt } = checked;
  for (const w of policy.warnings) log.warn({ policy: policy.file }, `policy: ${w}`);
  const policyFile = policy.file;

  // Under the supervisor (`--processes` > 1): the FHIR listener is the inherited fd 4, the admin
  // listener a private one the supervisor reads, and audit events go to the supervisor.
  const supervised = values.supervised === true && typeof process.send === 'function';
  const agentSocket = typeof values.agent === 'string' ? path.resolve(values.agent) : undefined;
  const agentTiers = policy.tiers.filter((t) => t.upstreams.length === 0).map((t) => t.name);
  if (agentTiers.length > 0 && !agentSocket) {
    const message = `tiers ${agentTiers.join(', ')} have no upstreams: give them upstreams in ${policy.file}, or run the agent and pass --agent (\`fhirguard up\` does both)`;
    log.fatal(message);
    process.stderr.write(`fhirguard proxy: ${message}\n`);
    return 2;
  }

  if (!holdTickObjectShape()) log.warn('could not hold a process.nextTick object: this Node builds them differently, and the request path may settle on slower code (src/proxy/tick-shape.ts)');
  loadSearchParameters();
  const preload = preloadValidator();
  log.info({ ms: Math.round(preload.ms), profiles: preload.profiles.length }, 'validator ready');
  for (const note of preload.notes) log.warn(`validator: ${note}`);
  await warmHttpClient().catch((err: unknown) => log.warn({ err }, 'warming the HTTP client failed: its parser is built at the first upstream connection instead'));

  const metrics = new ProxyMetrics(policy.tiers.map((t) => t.name));
  // Assigned below, after the pools it reads exist (their callback already needs it), and again
  // by each reload.
  let capabilities: CapabilitySource | undefined;
  const pools = new UpstreamPools(policy.tiers, {
    onStateChange: (tier, member, healthy, why) => {
      log[healthy ? 'info' : 'warn']({ tier, member, healthy }, why);
      if (healthy) capabilities?.memberHealthy(tier);
    },
  });
  metrics.setHealthSource(pools);
  let follow: { stop(): void } | undefined;
  const agentClient = agentSocket ? new AgentClient(agentSocket) : undefined;
  if (agentClient) {
    const client = agentClient;
    follow = followAgent(client, pools, agentTiers, log);
    // Under the supervisor, it says the agent's figures once for all processes.
    if (!supervised)
      registerEnforcementMetrics(
        metrics.registry,
        client,
        policy.tiers.map((t) => t.name),
        (err) => log.warn({ err }, 'reading enforcement state from the agent failed'),
      );
  }
  await pools.start();
  const authorization = await startAuthorization(policy, log, () => capabilities?.securityChanged());
  capabilities = new CapabilitySource(policy, pools, base, log, authorization && (() => authorization.smartConfiguration.endpoints()));
  await capabilities.refreshAll();

  const auditDir = typeof values['audit-dir'] === 'string' ? path.resolve(values['audit-dir']) : undefined;
  // With an agent and no trail of its own, the proxy hands its AuditEvents to the agent, which
  // keeps the trail (the confined front door can write no file).
  const audit = supervised
    ? values['audit-handover'] === true
      ? new SupervisorAudit((m, done) => process.send!(m, undefined, {}, () => done()))
      : undefined
    : auditDir
      ? new AuditTrail({ dir: auditDir, registry: metrics.registry, log })
      : agentClient
        ? new AgentAudit(agentClient, log, metrics.registry)
        : undefined;
  if (!audit && !supervised) log.warn('no audit trail: neither --audit-dir nor --agent is set, so who read which patient is not recorded (docs/audit.md)');
  // The sink reads the trail's files, never the proxy's memory: what it has not delivered when
  // the proxy stops, it delivers after the next start.
  const sink = auditDir && typeof values['audit-sink'] === 'string' ? new AuditSink({ dir: auditDir, base: values['audit-sink'], registry: metrics.registry, log }) : undefined;
  sink?.start();
  const proxy = await buildProxy({
    policy,
    pools,
    metrics,
    logger: log,
    base,
    bodyLimit,
    maxDepth,
    headersTimeoutMs,
    requestTimeoutMs,
    connections,
    capabilities,
    ...(authorization ? { authorization } : {}),
    ...(audit ? { audit } : {}),
    ...(tls ? { tls } : {}),
  });
  const app = proxy.app;
  metrics.policyInForce(policy.digest);
  log.info({ policy: policyFile, digest: policy.digest }, 'policy in force');
  const reloader = new PolicyReload({
    file: policyFile,
    server: proxy,
    metrics,
    log,
    parts: async (next, before) => {
      // The token check is kept when the policy's authorization is the same (its caches with it).
      const sameAuthorization = JSON.stringify(next.authorization) === JSON.stringify(before.policy.authorization);
      const auth = sameAuthorization ? (before.authorization as StartedAuthorization | undefined) : await startAuthorization(next, log, () => capabilities?.securityChanged());
      const nextCapabilities = new CapabilitySource(next, pools, base, log, auth && (() => auth.smartConfiguration.endpoints()));
      await nextCapabilities.refreshAll();
      return {
        parts: { policy: next, capabilities: nextCapabilities, ...(auth ? { authorization: auth } : {}) },
        // Once in force, the old parts' timers stop (requests in flight hold what they read).
        retire: () => {
          (before.capabilities as CapabilitySource | undefined)?.stop();
          if (!sameAuthorization) (before.authorization as StartedAuthorization | undefined)?.smartConfiguration.stop();
          capabilities = nextCapabilities;
        },
      };
    },
  });
  // A reload reads every file the proxy was started with again: the certificates (a set that
  // does not load is refused and the old one kept) and the policy.
  const reload = async (): Promise<ReloadAnswer> => {
    const certificates = await tls?.reload();
    return { ...(await reloader.reload()), ...(certificates ? { tls: certificates } : {}) };
  };
  const admin = createAdminServer({
    registry: metrics.registry,
    log,
    readiness: () => ({ ready: pools.ready() && (capabilities?.settled() ?? true), tiers: pools.tierHealth() }),
    reload,
  });
  try {
    if (supervised) {
      await app.ready();
      await new Promise<void>((resolve, reject) => {
        app.server.once('error', reject);
        app.server.listen({ fd: SUPERVISED_FHIR_FD }, () => resolve());
      });
    } else await app.listen({ host: listen.host, port: listen.port });
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      if (supervised) admin.listen(0, '127.0.0.1', () => resolve());
      else admin.listen(adminAt.port, adminAt.host, () => resolve());
    });
  } catch (err) {
    log.fatal({ err }, `cannot listen: ${(err as Error).message}`);
    follow?.stop();
    tls?.close();
    await app.close();
    await pools.close();
    return 1;
  }
  const fhirAddr = app.server.address() as AddressInfo;
  const adminAddr = admin.address() as AddressInfo;
  const fhirUrl = `${tls ? 'https' : 'http'}://${formatHostPort({ host: fhirAddr.address, port: fhirAddr.port })}${base}`;
  const adminAddress = formatHostPort({ host: adminAddr.address, port: adminAddr.port });
  // Under the supervisor, its own line says where the front door listens; this is one process of it.
  log.info({ fhir: fhirUrl, admin: adminAddress, tiers: policy.tiers.map((t) => t.name) }, supervised ? 'proxy process ready' : 'fhirguard proxy listening');
  if (supervised) process.send!({ type: 'listening', admin: adminAddress, fhir: fhirUrl } satisfies ChildMessage);
  return {
    fhirUrl,
    adminAddress,
    reload,
    async close() {
      follow?.stop();
      tls?.close();
      capabilities?.stop();
      (proxy.current().authorization as StartedAuthorization | undefined)?.smartConfiguration.stop();
      await app.close(); // stops accepting, lets in-flight requests finish
      // Every request answered has its record on disk (or with the agent) before the proxy says it stopped.
      if (audit instanceof AuditTrail) await audit.close();
      else await audit?.flush();
      await sink?.stop();
      await new Promise<void>((resolve) => admin.close(() => resolve()));
      await pools.close();
      log.info('fhirguard proxy stopped');
    },
  };
}

interface StartedAuthorization {
  tokens: TokenVerifier;
  smartConfiguration: SmartConfiguration;
}

/**
 * The token check and SMART configuration of a policy with `authorization:`, the issuer's
 * discovery asked once before it serves; without it, the log says loudly that anyone who
 * reaches the listener may do all the policy allows.
 */
async function startAuthorization(policy: Policy, log: Logger, changed: () => void): Promise<StartedAuthorization | undefined> {
  const config = policy.authorization;
  if (!config) {
    log.warn(`authorization is off: ${policy.file} has no authorization: block, so every client that reaches the listener may do everything the policy allows (docs/authorization.md)`);
    return undefined;
  }
  const smartConfiguration = new SmartConfiguration(config, log, changed);
  await smartConfiguration.resolve();
  log.info({ issuer: config.issuer, audience: config.audience }, 'authorization: SMART on FHIR bearer tokens from the issuer');
  // Loaded only here: the verifier stands on jose, an ES module, which a policy without
  // authorization (and the test runner's in-process proxies) never needs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TokenVerifier: Verifier } = require('../auth/tokens') as typeof import('../auth/tokens');
  return { tokens: new Verifier(config), smartConfiguration };
}
