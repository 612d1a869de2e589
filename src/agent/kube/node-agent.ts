// `fhirguard agent --adopt-pods <label-key>`: the agent as a Kubernetes DaemonSet, the eBPF half
// of the workers' confinement on its node. It starts no workers and runs no runc (the kubelet
// runs the worker pods under their tier's seccomp profile): it loads the eBPF programs with
// the kubelet's pod cgroups as their root, follows the labelled pods of its node through the
// API server, puts each tier's eBPF policy on their worker containers (Adopter) and exports
// the kernel counters on its admin listener under the metric names the proxy uses.
// SIGTERM leaves every policy pinned: enforcement goes on while a new agent takes over.

import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { BpfEnforcer, cgroup2Mount, probeKernel } from '../../enforce/bpf';
import { createAdminServer } from '../../metrics/admin';
import { registerBuildInfo } from '../../metrics/build-info';
import { registerEnforcementMetrics } from '../../metrics/enforcement';
import { loadPolicy } from '../../policy';
import { enforcePaths } from '../options';
import { Adopter, loadNodeProfiles, REFUSAL_REASONS, type RefusalReason } from './adopter';
import { inClusterConfig, KubeApi } from './api';
import { findKubepods, KUBEPODS_CANDIDATES, liveCgroupIds, PodCgroups } from './cgroups';
import { nodeModeOptions, UsageError, type NodeModeOptions } from './options';
import { PodWatch } from './pod-watch';

type Values = Record<string, string | boolean | string[] | undefined>;

const RESYNC_MS = 10_000;

/** Drops the policies of cgroups that no longer exist (pods that went while no agent ran). */
async function forgetDeadCgroups(bpf: BpfEnforcer, mount: string, log: Logger): Promise<void> {
  const registered = (await bpf.counters()).cgroups.map((c) => c.cgid);
  const live = liveCgroupIds(mount);
  const dead = registered.filter((id) => !live.has(id));
  for (const id of dead) await bpf.forget(id);
  if (dead.length) log.info({ forgotten: dead.length }, 'dropped the eBPF policies of cgroups that are gone');
}

/** The node agent's /metrics: build info, process, the kernel counters, adoption refusals. */
export function nodeRegistry(adopter: Pick<Adopter, 'counters' | 'workers' | 'enforcement'>, tiers: string[], log: Pick<Logger, 'warn'>): { registry: Registry; refused(reason: RefusalReason): void } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registerBuildInfo(registry, 'agent');
  const source = {
    counters: () => adopter.counters(),
    workers: async () => adopter.workers(),
    enforcement: async () => adopter.enforcement(),
  };
  registerEnforcementMetrics(registry, source, tiers, (err) => log.warn({ err }, `reading the eBPF counters failed: ${err.message}`));
  const refusals = new Counter({
    name: 'fhirguard_adoption_refusals_total',
    help: 'Labelled pods the node agent did not put under an eBPF policy, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
  return { registry, refused: (reason) => refusals.inc({ reason }) };
}

function listen(server: http.Server, o: NodeModeOptions['admin']): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server.address() as AddressInfo));
  });
}

/** Starts adopting; resolves with what stops it. */
async function startNodeAgent(o: NodeModeOptions, values: Values, log: Logger): Promise<() => Promise<void>> {
  const paths = enforcePaths(values);
  const policy = loadPolicy(paths.policyFile);
  const profiles = loadNodeProfiles(paths.profilesDir, policy);
  for (const [tier, p] of profiles) {
    if ('reason' in p) log.error({ tier, reason: p.reason }, `${p.message}: pods of tier ${tier} will NOT be adopted`);
  }
  const api = new KubeApi(inClusterConfig(o.serviceAccountDir));
  const mount = cgroup2Mount();
  if (!mount) throw new Error('no cgroup v2 hierarchy is mounted (mount | grep cgroup2): the eBPF policies are keyed by cgroup v2 ids');
  const podRoot = o.podCgroups ?? findKubepods(mount);
  if (!podRoot) throw new Error(`no kubelet pod cgroups under ${mount} (looked for ${KUBEPODS_CANDIDATES.join(', ')}): name them with --pod-cgroups`);
  const kernel = await probeKernel();
  if (!kernel.syscallPolicy.available) throw new Error(`fhirguard's eBPF syscall policy cannot run on this node: ${kernel.syscallPolicy.reason}`);
  if (!kernel.egress.available) log.error(`ENFORCEMENT DEGRADED: egress allow-lists are not enforced on this node: ${kernel.egress.reason}`);
  const bpf = new BpfEnforcer({ cgroupRoot: podRoot });
  await bpf.load();
  await forgetDeadCgroups(bpf, mount, log);

  const tiers = policy.tiers.map((t) => t.name);
  let refused: (reason: RefusalReason) => void = () => undefined;
  const adopter = new Adopter({
    bpf,
    policy,
    profiles,
    cgroups: new PodCgroups(podRoot),
    cgroup2Mount: mount,
    labelKey: o.labelKey,
    container: o.container,
    nodeName: o.nodeName,
    log,
    onRefused: (reason) => refused(reason),
  });
  const metrics = nodeRegistry(adopter, tiers, log);
  refused = metrics.refused;
  const selector = { namespace: o.namespace, labelSelector: o.labelKey, fieldSelector: `spec.nodeName=${o.nodeName}` };
  const watch = new PodWatch(api, selector, { update: (p) => void adopter.update(p), remove: (p) => void adopter.remove(p) }, log);
  const admin = createAdminServer({
    registry: metrics.registry,
    // Ready once it knows its node's pods.
    readiness: () => ({ ready: watch.synced, tiers: { synced: watch.synced, apiError: watch.lastError?.message ?? null } }),
    log,
  });
  const at = await listen(admin, o.admin);
  const events = await bpf
    .watchEvents((e) => adopter.logEvent(e))
    .catch((err: Error) => {
      log.warn({ err }, `violation events will not be logged: ${err.message}`);
      return null;
    });
  watch.start();
  const resync = setInterval(() => void adopter.resync(), RESYNC_MS);
  log.info({ node: o.nodeName, ...selector, podCgroups: podRoot, admin: `${at.address}:${at.port}`, pinDir: bpf.pinDir }, 'agent ready (node mode): adopting the labelled pods of this node');
  return async () => {
    clearInterval(resync);
    await watch.stop();
    await adopter.idle();
    await events?.stop();
    await new Promise<void>((resolve) => {
      admin.close(() => resolve());
      admin.closeAllConnections();
    });
  };
}

export async function runNodeAgent(values: Values, log: Logger): Promise<number> {
  let o: NodeModeOptions;
  try {
    o = nodeModeOptions(values);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log.fatal(`agent: ${err.message}`);
    return 2;
  }
  const stop = await startNodeAgent(o, values, log).catch((err: Error) => {
    log.fatal({ err }, `agent cannot start: ${err.message}`);
    return null;
  });
  if (!stop) return 1;
  await Promise.race([once(process, 'SIGTERM'), once(process, 'SIGINT')]);
  await stop();
  log.info('agent stopped; the eBPF policies stay on the adopted cgroups');
  return 0;
}
