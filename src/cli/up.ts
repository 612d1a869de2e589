// `fhirguard up`: the whole system on one machine. Starts the privileged agent, which runs
// and confines every tier's workers and, as root, the proxy itself (as its own identity, in a
// container of its own, under its own seccomp and eBPF profiles). Not root, up starts the
// proxy as a process of its own once the agent's API answers. Stops everything on
// SIGINT/SIGTERM, and everything if one part dies. As root, what the proxy and the workers run is the install
// staged into the state directory (src/install/stage.ts), which is also what up signs: the
// checkout may be in a directory they cannot enter, such as root's home.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AgentClient } from '../agent-api/client';
import { askReload } from '../agent-api/reload';
import { defaultControlSocket } from '../agent/control';
import { ENFORCE_OPTIONS, enforcePaths } from '../agent/options';
import { IMAGE_OPTIONS } from '../image/options';
import { installRoot } from '../install/root';
import { resolveIdentities, type Identities } from '../enforce/identities';
import { unsearchableAncestor } from '../enforce/layout';
import { runnableInstall } from '../install/stage';
import { loadPolicy, PolicyError } from '../policy';
import { PROXY_OPTIONS } from '../proxy/options';
import { tlsUnderUp } from './up-tls';
import { TRUST_OPTIONS } from '../trust/options';
import { selfSign } from '../trust/self-sign';
import { LOG_LEVEL_OPTION, type Command } from './command';

function say(message: string): void {
  process.stderr.write(`fhirguard up: ${message}\n`);
}

/**
 * The unprivileged proxy and workers must pass through the state dir (to the agent's socket,
 * the staged install, their sockets and the database, each guarded by its own owner and
 * mode): root's, 0711, and every directory above it must let each identity through. Returns
 * the first identity and directory that does not, if any.
 */
function prepareStateDir(stateDir: string, ids: Identities): { role: string; uid: number; dir: string } | undefined {
  mkdirSync(stateDir, { recursive: true });
  chownSync(stateDir, 0, 0);
  chmodSync(stateDir, 0o711);
  for (const [role, id] of Object.entries(ids)) {
    const dir = unsearchableAncestor(path.join(stateDir, 'agent.sock'), id);
    if (dir) return { role, uid: id.uid, dir };
  }
  return undefined;
}

/** Not root: the state directory (signing key, agent socket) must be this user's to write. */
function writableStateDir(stateDir: string): string | undefined {
  try {
    mkdirSync(stateDir, { recursive: true });
    accessSync(stateDir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

function exited(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? 1);
    else child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

async function waitForAgent(client: AgentClient, agent: ChildProcess, timeoutMs: number): Promise<boolean> {
  const gone = exited(agent).then(() => false);
  const deadline = Date.now() + timeoutMs;
  const poll = async (): Promise<boolean> => {
    while (Date.now() < deadline) {
      try {
        await client.enforcement();
        return true;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    return false;
  };
  return Promise.race([poll(), gone]);
}

export const upCommand: Command = {
  name: 'up',
  summary: 'run the whole system on its embedded default: agent, confined workers per tier, proxy',
  usage: '[options]',
  options: {
    ...PROXY_OPTIONS,
    ...ENFORCE_OPTIONS,
    ...IMAGE_OPTIONS,
    ...TRUST_OPTIONS,
    unsigned: {
      type: 'boolean',
      env: 'FHIRGUARD_UNSIGNED',
      help: 'start workers without checking signed statements (by default up signs its tiers at start and the agent checks every start)',
    },
    'log-level': LOG_LEVEL_OPTION,
  },
  details: [
    "As root: workers run in runc containers under their tier's seccomp and eBPF profiles; the",
    "proxy, the read tiers' and the writing tiers' workers run as three system users that share",
    'nothing (--proxy-user, --reader-user, --writer-user; made when missing). Not root: everything',
    'runs as you, workers as plain processes, and the agent says loudly that nothing is confined.',
    'As root, the proxy and the workers run from the install staged into <state-dir>/install',
    "(root's, readable by them wherever the checkout is; docs/install.md). The agent runs the proxy",
    'confined like a worker (docs/enforcement.md), reading a copy of the policy in <state-dir>/proxy.',
    'Signed statements: up keeps a key pair in <state-dir>/trust (made on the first run) and',
    'signs every tier at start for the profiles, the policy and the install (or --image) as they',
    'are then; the agent checks each worker start (restarts too) against them, so a file changed',
    "while the system runs refuses the next start of that tier's workers (503) until up is",
    "restarted. With --trusted-keys, the operator's statements (--attestations) are checked instead.",
    'SIGHUP (or `fhirguard reload`): the agent checks the policy file again, signs the tiers for it',
    'and hands it to the front door; a policy with problems or other tiers is refused, the old one',
    'stays (docs/policy.md).',
  ].join('\n'),
  async run(values) {
    const bin = path.join(installRoot(), 'bin', 'fhirguard');
    const paths = enforcePaths(values);
    const root = process.getuid?.() === 0;
    const socket = path.join(paths.stateDir, 'agent.sock');
    const level = String(values['log-level']);
    const pass = (names: string[]): string[] => names.flatMap((n) => (typeof values[n] === 'string' ? [`--${n}`, String(values[n])] : []));
    const tls = tlsUnderUp(values, root, paths.policyFile);
    if ('refused' in tls) {
      say(tls.refused);
      return 2;
    }

    let ids: Identities | undefined;
    if (root) {
      try {
        ids = resolveIdentities(values, true);
      } catch (err) {
        say((err as Error).message);
        return 2;
      }
      const blocked = prepareStateDir(paths.stateDir, ids);
      if (blocked) {
        say(`the ${blocked.role} identity (uid ${blocked.uid}) cannot reach ${paths.stateDir}: ${blocked.dir} is closed to it; choose another --state-dir or open ${blocked.dir} (chmod o+x)`);
        return 2;
      }
    } else {
      const why = writableStateDir(paths.stateDir);
      if (why) {
        say(`cannot write the state directory ${paths.stateDir} (${why}): run up as root, or give --state-dir <a directory you can write>`);
        return 2;
      }
    }
    let install: string;
    try {
      install = runnableInstall(paths.stateDir);
    } catch (err) {
      say(`cannot stage the install into ${paths.stateDir}: ${(err as Error).message}`);
      return 1;
    }
    let trust: string[] = [];
    if (typeof values['trusted-keys'] === 'string') trust = pass(['trusted-keys', 'attestations']);
    else if (values.unsigned !== true) {
      try {
        const image = typeof values.image === 'string' && typeof values.advisories === 'string' ? { ref: values.image, advisories: path.resolve(values.advisories) } : undefined;
        const t0 = Date.now();
        const signed = await selfSign({
          stateDir: paths.stateDir,
          policy: loadPolicy(paths.policyFile),
          policyFile: paths.policyFile,
          profilesDir: paths.profilesDir,
          install,
          ...(image ? { image } : {}),
        });
        say(
          `${signed.created ? 'made a signing key' : 'signing key'} ${signed.publicKey} (${signed.keyid.slice(0, 16)}); signed tiers ${signed.tiers.join(', ')} for ${image ? `image ${image.ref}` : root ? `the install staged in ${install}` : 'this install'} in ${Date.now() - t0} ms: every worker start is checked against them`,
        );
        // --resign: a reload has the agent sign the tiers again for the new policy, with this key.
        trust = ['--trusted-keys', signed.publicKey, '--attestations', signed.attestations, '--resign'];
      } catch (err) {
        say(err instanceof PolicyError ? `policy rejected:\n${err.message}` : `cannot sign the tiers: ${(err as Error).message}`);
        return err instanceof PolicyError ? 2 : 1;
      }
    }
    const proxyArgs = [
      ...pass([
        'listen',
        'base',
        'admin',
        'body-limit',
        'max-depth',
        'headers-timeout',
        'request-timeout',
        'keep-alive-timeout',
        'idle-timeout',
        'max-connections',
        'max-connections-per-address',
        'processes',
      ]),
      ...tls.args,
    ];
    const agent = spawn(
      process.execPath,
      [
        bin,
        'agent',
        '--policy',
        paths.policyFile,
        '--profiles',
        paths.profilesDir,
        '--state-dir',
        paths.stateDir,
        '--db',
        paths.db,
        '--socket',
        socket,
        '--log-level',
        level,
        ...pass(['runc', 'proxy-user', 'reader-user', 'writer-user', 'image', 'advisories']),
        // The agent keeps the audit trail (default <state-dir>/audit); the proxy hands it its events.
        ...pass(['audit-dir', 'audit-sink']),
        ...trust,
        // As root the agent runs the proxy too, confined like a worker (agent/front-door.ts);
        // else up runs it, and a policy reload reaches it at its admin listener.
        ...(root ? ['--front-door', JSON.stringify(proxyArgs)] : ['--proxy-admin', String(values.admin)]),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const client = new AgentClient(socket, 2000);
    if (!(await waitForAgent(client, agent, 120_000))) {
      say('the agent did not start (see its log above)');
      agent.kill('SIGTERM');
      await exited(agent);
      return 1;
    }

    if (ids) say(`the agent runs the proxy confined as uid ${ids.proxy.uid}, read tiers as ${ids.reader.uid}, writing tiers as ${ids.writer.uid}; only the agent keeps root`);
    // Not root: nothing is confined, and the proxy is a process of up's own.
    const proxy = root
      ? null
      : spawn(process.execPath, [path.join(install, 'bin', 'fhirguard'), 'proxy', '--policy', paths.policyFile, '--agent', socket, '--log-level', level, ...proxyArgs], {
          stdio: ['ignore', 'inherit', 'inherit'],
          cwd: install,
          // The agent keeps the trail: a proxy reading up's FHIRGUARD_AUDIT_* would keep a second one.
          env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FHIRGUARD_AUDIT_DIR' && k !== 'FHIRGUARD_AUDIT_SINK')),
        });

    let stopping = false;
    let asked = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      if (!proxy) agent.kill('SIGTERM');
      else {
        proxy.kill('SIGTERM');
        void exited(proxy).then(() => agent.kill('SIGTERM'));
      }
    };
    const onSignal = (): void => {
      asked = true;
      stop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // SIGHUP: the agent checks the policy file again and hands it to the front door (`fhirguard reload`).
    process.on('SIGHUP', () => {
      askReload({ socketPath: defaultControlSocket(paths.stateDir) }, '/policy/reload').then(
        (a) => say(a.result === 'refused' ? `policy reload refused, ${a.policy.digest} stays in force:\n${a.error}` : `policy ${a.result}: ${a.policy.digest} in force`),
        (err: Error) => say(`policy reload failed: ${err.message}`),
      );
    });
    const first = await Promise.race([exited(agent).then((c) => ['agent', c] as const), ...(proxy ? [exited(proxy).then((c) => ['proxy', c] as const)] : [])]);
    if (!asked) {
      say(`the ${first[0]} exited (status ${first[1]}); stopping the rest`);
      stop();
    }
    const [a, p] = await Promise.all([exited(agent), proxy ? exited(proxy) : 0]);
    if (asked) return a === 0 && p === 0 ? 0 : 1;
    return first[1] || 1;
  },
};
