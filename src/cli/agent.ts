// `fhirguard agent`: the privileged process. Runs each tier's workers confined (runc
// containers, seccomp, eBPF) or, where this host cannot, as plain processes and says so;
// serves the worker addresses, states and kernel counters to the proxy on a Unix socket.

import { AuditSink } from '../audit/sink';
import { AuditTrail } from '../audit/trail';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { Agent } from '../agent/agent';
import { serveApi } from '../agent/api';
import { defaultControlSocket, serveControl } from '../agent/control';
import { runNodeAgent } from '../agent/kube/node-agent';
import { NODE_MODE_OPTIONS } from '../agent/kube/options';
import { ENFORCE_OPTIONS, enforcePaths } from '../agent/options';
import { installRoot } from '../install/root';
import { runnableInstall } from '../install/stage';
import type { FrontDoorMode } from '../agent/front-door';
import { resolveIdentities, sameIdentity } from '../enforce/identities';
import { IMAGE_OPTIONS, workerImageFrom } from '../image/options';
import type { Policy } from '../policy';
import { loadPolicyHashed, trustGateFrom, TRUST_OPTIONS } from '../trust/options';
import { selfSign } from '../trust/self-sign';
import { LOG_LEVEL_OPTION, type Command } from './command';

export const agentCommand: Command = {
  name: 'agent',
  summary: "run and confine the tiers' workers (root), and serve their state to the proxy",
  usage: '[options]',
  options: {
    ...ENFORCE_OPTIONS,
    ...TRUST_OPTIONS,
    ...IMAGE_OPTIONS,
    ...NODE_MODE_OPTIONS,
    socket: { type: 'string', env: 'FHIRGUARD_AGENT_SOCKET', arg: '<path>', help: "the agent API's Unix socket (default <state-dir>/agent.sock, mode 0660)" },
    'socket-group': {
      type: 'string',
      env: 'FHIRGUARD_AGENT_SOCKET_GROUP',
      arg: '<gid>',
      help: "group that may connect to the API socket (default: the proxy identity's group)",
    },
    'front-door': {
      type: 'string',
      env: 'FHIRGUARD_FRONT_DOOR',
      arg: '<json>',
      help: 'run the proxy too, confined: its options as a JSON array (e.g. ["--listen","127.0.0.1:8080","--admin","127.0.0.1:9464"]); `up` passes them',
    },
    'front-door-mode': {
      type: 'string',
      env: 'FHIRGUARD_FRONT_DOOR_MODE',
      arg: '<enforce|audit>',
      default: 'enforce',
      help: "the front door's eBPF action: enforce kills a call outside its serve set, audit counts it",
    },
    resign: {
      type: 'boolean',
      help: "the trusted key is `up`'s own (<state-dir>/trust): a policy reload signs the tiers again with it; `up` passes it",
    },
    'proxy-admin': {
      type: 'string',
      arg: '<host:port>',
      help: 'the admin listener of the proxy `up` runs beside this agent (not root): a policy reload reaches that proxy there',
    },
    control: {
      type: 'string',
      env: 'FHIRGUARD_AGENT_CONTROL',
      arg: '<path>',
      help: 'the control socket `fhirguard rollout` talks to (default <state-dir>/control/agent.sock; root only: mode 0600 in a 0700 directory)',
    },
    'audit-dir': {
      type: 'string',
      env: 'FHIRGUARD_AGENT_AUDIT_DIR',
      arg: '<dir>',
      help: "where the agent keeps the front door's audit trail, which the proxy hands it (default <state-dir>/audit)",
    },
    'audit-sink': { type: 'string', env: 'FHIRGUARD_AGENT_AUDIT_SINK', arg: '<fhir base url>', help: 'also deliver the audit trail to this FHIR server, at least once' },
    'without-ebpf': {
      type: 'boolean',
      env: 'FHIRGUARD_WITHOUT_EBPF',
      help: 'leave the eBPF policy out (containers and seccomp only; reported inactive)',
    },
    'log-level': LOG_LEVEL_OPTION,
  },
  details: [
    'Needs root, runc and eBPF for full enforcement. Without them (not root, no runc, no eBPF)',
    'it runs degraded: workers as plain processes or without eBPF, a loud log line, enforcement',
    'reported inactive on GET /enforcement; tiers with `enforcement: required` are refused.',
    "With --trusted-keys, every worker start (restarts too) needs its tier's statement from",
    '`fhirguard sign` to verify; a tier that fails is refused (its requests get 503) and says why.',
    'API (GET, JSON): /workers, /events (NDJSON stream), /counters, /enforcement, /health.',
    'Control socket (root only): POST /rollout, what `fhirguard rollout` sends.',
    'SIGTERM or SIGINT: every worker gets its shutdown phase and SIGTERM; the agent exits 0.',
    'Node mode (--adopt-pods, a Kubernetes DaemonSet): no runc, no workers, no API socket; the',
    "tier's eBPF policy on the worker containers of this node's pods labelled with the tier",
    '(boot, serve once the pod is Ready), counters as metrics on --admin. Needs eBPF, not runc.',
  ].join('\n'),
  async run(values) {
    const log = pino({ level: String(values['log-level'] ?? 'info'), name: 'fhirguard-agent' }, pino.destination({ dest: 2, sync: true }));
    if (values['adopt-pods'] !== undefined) return runNodeAgent(values, log);
    if (values.admin !== undefined) {
      // The proxy exports this agent's counters already: a second export would count them twice.
      log.fatal('agent: --admin goes with --adopt-pods (without it, the proxy exports the counters)');
      return 2;
    }
    const paths = enforcePaths(values);
    let agent: Agent;
    let api: { close(): Promise<void> };
    let audit: AuditTrail | undefined;
    let sink: AuditSink | undefined;
    let control: { close(): Promise<void> };
    const socketPath = path.resolve(typeof values.socket === 'string' ? values.socket : path.join(paths.stateDir, 'agent.sock'));
    try {
      const root = process.getuid?.() === 0;
      const identities = root ? resolveIdentities(values, true) : sameIdentity({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
      const { policy, sha256: policySha256 } = loadPolicyHashed(paths.policyFile);
      const image = workerImageFrom(values, { policy, stateDir: paths.stateDir, log });
      // Workers run from the install staged into the state directory (root's copy, readable
      // by the workers' identities wherever the checkout is), or from the image.
      const install = image ? installRoot() : runnableInstall(paths.stateDir);
      const trust = trustGateFrom({ values, profilesDir: paths.profilesDir, policyFile: paths.policyFile, policySha256, install, stateDir: paths.stateDir, log, ...(image ? { image } : {}) });
      const frontDoor = frontDoorOption(values, paths.policyFile, socketPath);
      agent = new Agent({
        policy,
        profilesDir: paths.profilesDir,
        stateDir: paths.stateDir,
        db: paths.db,
        install,
        identities,
        runcPath: values.runc as string | undefined,
        withoutEbpf: values['without-ebpf'] === true,
        log,
        workerLogLevel: String(values['log-level'] ?? 'info'),
        trust,
        image,
        ...(frontDoor ? { frontDoor } : {}),
        ...(typeof values['proxy-admin'] === 'string' ? { proxyAdmin: values['proxy-admin'] } : {}),
        ...(values.resign === true && trust
          ? {
              resign: async (next: Policy) => {
                const signImage = typeof values.image === 'string' && typeof values.advisories === 'string' ? { ref: values.image, advisories: path.resolve(values.advisories) } : undefined;
                await selfSign({ stateDir: paths.stateDir, policy: next, policyFile: paths.policyFile, profilesDir: paths.profilesDir, install, ...(signImage ? { image: signImage } : {}) });
              },
            }
          : {}),
      });
      await mkdir(path.dirname(socketPath), { recursive: true });
      await agent.start();
      const gid = typeof values['socket-group'] === 'string' ? Number(values['socket-group']) : identities.proxy.gid;
      // The front door's audit trail: the confined proxy can write no file, so it hands its
      // AuditEvents to the agent (POST /audit), which keeps them here.
      const auditDir = path.resolve(typeof values['audit-dir'] === 'string' ? values['audit-dir'] : path.join(paths.stateDir, 'audit'));
      audit = new AuditTrail({ dir: auditDir, log });
      if (typeof values['audit-sink'] === 'string') {
        sink = new AuditSink({ dir: auditDir, base: values['audit-sink'], log });
        sink.start();
      }
      api = await serveApi(agent, { socketPath, gid: root ? gid : undefined, log, audit });
      const controlPath = path.resolve(typeof values.control === 'string' ? values.control : defaultControlSocket(paths.stateDir));
      control = await serveControl(agent, { socketPath: controlPath, log });
      agent.startFrontDoor();
      log.info({ socket: socketPath, control: controlPath, workers: agent.workers().length }, 'agent ready');
    } catch (err) {
      log.fatal({ err }, `agent cannot start: ${(err as Error).message}`);
      return 1;
    }
    // SIGHUP: as `fhirguard reload` through the control socket (the answer is logged).
    const reload = (): void => void agent.reloadPolicy().catch((err: unknown) => log.error({ err }, 'policy reload failed'));
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    process.off('SIGHUP', reload);
    log.info('stopping workers');
    await control.close();
    await api.close();
    await agent.stop();
    // After the front door has stopped: every event it handed over is on disk.
    await audit?.close();
    await sink?.stop();
    log.info('agent stopped');
    return 0;
  },
};

/** `--front-door <json>` as the agent's front door options, or undefined. */
function frontDoorOption(
  values: Record<string, unknown>,
  policyFile: string,
  agentSocket: string,
): { args: string[]; mode: Exclude<FrontDoorMode, 'record'>; policyFile: string; agentSocket: string } | undefined {
  if (typeof values['front-door'] !== 'string') return undefined;
  let args: unknown;
  try {
    args = JSON.parse(values['front-door']);
  } catch (err) {
    throw new Error(`--front-door is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error("--front-door must be a JSON array of strings (the proxy's options)");
  const mode = values['front-door-mode'];
  if (mode !== 'enforce' && mode !== 'audit') throw new Error(`--front-door-mode must be enforce or audit (got '${String(mode)}')`);
  return { args, mode, policyFile, agentSocket };
}
