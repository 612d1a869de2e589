// `fhirguard proxy`: the FHIR front door alone. Tiers with `upstreams` forward to them;
// tiers without get their members from the agent (`--agent`), which `fhirguard up` starts.
// Never needs root.

import { readFileSync } from 'node:fs';
import pino from 'pino';
import { runProxy } from '../proxy/run';
import { PROXY_OPTIONS, processCount } from '../proxy/options';
import { runSupervisor } from '../proxy/processes/run-supervisor';
import { LOG_LEVEL_OPTION, type Command } from './command';

export const proxyCommand: Command = {
  name: 'proxy',
  summary: "run the FHIR front door (classify, policy, validate, route) in front of the tiers' upstreams",
  usage: '[options]',
  options: {
    ...PROXY_OPTIONS,
    policy: { type: 'string', env: 'FHIRGUARD_POLICY', default: 'profiles/policy.yaml', arg: '<file>', help: 'policy file (tiers and rules)' },
    agent: {
      type: 'string',
      env: 'FHIRGUARD_AGENT_SOCKET',
      arg: '<socket>',
      help: "the agent's API socket: tiers without upstreams route to the workers it runs",
    },
    'log-level': LOG_LEVEL_OPTION,
    supervised: { type: 'boolean', help: 'run as one of the processes of --processes: listen on the inherited fd 4, report to the supervisor (it passes this)' },
    'audit-handover': { type: 'boolean', help: 'with --supervised: hand AuditEvents to the supervisor, which keeps the trail (it passes this)' },
  },
  details: [
    'SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0.',
    'SIGHUP (or `fhirguard reload`): read the TLS files and the policy file again; a good policy is put in force for',
    'new requests, one with problems is refused and the old one stays (docs/policy.md).',
  ].join('\n'),
  async run(values) {
    const log = pino({ level: String(values['log-level']), name: 'fhirguard-proxy' });
    const unconfined = unconfinedBecause();
    if (unconfined && values.supervised !== true) log.warn(`FRONT DOOR UNCONFINED: ${unconfined}; \`fhirguard up\` as root has the agent run the proxy confined (docs/enforcement.md)`);
    let count: number;
    try {
      count = values.supervised === true ? 1 : processCount(values.processes);
    } catch (err) {
      process.stderr.write(`fhirguard proxy: ${(err as Error).message}\n`);
      return 2;
    }
    // One process per core: a supervisor and its proxy processes (src/proxy/processes/).
    const running = count > 1 ? await runSupervisor(values, count, process.argv[1], log) : await runProxy(values, log);
    if (typeof running === 'number') return running;
    // The answer is logged by the reload itself; a signal has no one to answer.
    const reload = (): void => void running.reload().catch((err: unknown) => log.error({ err }, 'policy reload failed'));
    process.on('SIGHUP', reload);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
      // A process of the supervisor's stops when it does, however it ended.
      if (values.supervised === true) process.once('disconnect', resolve);
    });
    process.off('SIGHUP', reload);
    await running.close();
    // The IPC channel would keep a process of the supervisor's alive.
    if (process.connected) process.disconnect();
    return 0;
  },
};

/** Why this process is not confined as the agent confines the proxy, or null when it is. */
function unconfinedBecause(): string | null {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return 'no /proc/self/status to check its confinement';
  }
  if (/^Seccomp:\s*0$/m.test(status)) return "no seccomp filter, no eBPF policy, the host's filesystem";
  if (!/^NoNewPrivs:\s*1$/m.test(status)) return 'without no-new-privileges';
  return null;
}
