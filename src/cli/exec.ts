// `fhirguard exec --tier <name> -- <cmd> [args...]`: runs one command under exactly the
// confinement a worker of that tier gets (same mounts, namespaces, user, limits, seccomp
// profile, eBPF policy), so operators can try a profile against their own programs. It
// prints nothing of its own on stdout; the command's stdio is passed through; the exit
// status is the command's (128+signal when it was killed).

import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ENFORCE_OPTIONS, enforcePaths } from '../agent/options';
import { openEnforcement } from '../enforce/open';
import { hostFiles, coveredBy } from '../enforce/host-files';
import { installRoot } from '../install/root';
import { frontDoorEgress } from '../agent/front-door';
import { FRONT_DOOR, frontDoorContainerSpec, serverContainerSpec } from '../enforce/confine';
import { tierIdentity } from '../enforce/identities';
import { launchConfined, startConfined, type ConfinedProcess } from '../enforce/launch';
import { resolveIdentities } from '../enforce/identities';
import { prepareDataDir, prepareSocketDir, checkDataDir, socketDirOwner } from '../enforce/layout';
import { loadTierProfiles } from '../enforce/tier-profiles';
import { loadPolicy, type Policy } from '../policy';
import type { Command } from './command';

function say(msg: string): void {
  process.stderr.write(`fhirguard exec: ${msg}\n`);
}

/** The host file `cmd` names: a path, or the first match on the host's PATH. */
function resolveCommand(cmd: string): string | undefined {
  const candidates = cmd.includes('/') ? [path.resolve(cmd)] : (process.env.PATH ?? '/usr/bin:/bin').split(':').map((d) => path.join(d, cmd));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // next
    }
  }
  return undefined;
}

export const execCommand: Command = {
  name: 'exec',
  summary: "run a command under a tier's worker confinement (container, seccomp, eBPF)",
  usage: '--tier <name> [--serve-after <ms>] [options] -- <cmd> [args...]',
  options: {
    tier: { type: 'string', arg: '<name>', help: `the tier whose confinement to apply (from the policy file; '${FRONT_DOOR}': the front door's)` },
    'serve-after': {
      type: 'string',
      arg: '<ms>',
      help: "switch the eBPF policy from boot to serve phase this long after the command's exec (default: never)",
    },
    mode: { type: 'string', arg: '<enforce|audit>', help: "override the tier's mode from the policy file" },
    ro: { type: 'string', multiple: true, arg: '<path>', help: 'also mount this host path read-only at the same path (repeatable)' },
    report: { type: 'string', arg: '<file>', help: "write the exit status and the cgroup's eBPF counters there as JSON at the end" },
    ...ENFORCE_OPTIONS,
  },
  details: [
    "The command runs as the workers' user in a read-only root holding only what a worker",
    'needs (the node binary and its libraries, the fhirguard install, the database directory,',
    'read-only for read tiers), with no network, no capabilities and the tier profiles. A host',
    'file <cmd> outside those mounts is mounted read-only at the same path. Needs root and runc;',
    'without eBPF it runs with the container and seccomp only, and says so on stderr.',
    'SIGUSR1 to fhirguard exec switches to the serve phase at once. The line',
    "'fhirguard exec: serve phase' on stderr says the serve phase is on.",
  ].join('\n'),
  async run(values, positionals) {
    const tierName = typeof values.tier === 'string' ? values.tier : '';
    if (!tierName || positionals.length === 0) {
      say('usage: fhirguard exec --tier <name> -- <cmd> [args...]');
      return 2;
    }
    const serveAfter = values['serve-after'] === undefined ? undefined : Number(values['serve-after']);
    if (serveAfter !== undefined && (!Number.isFinite(serveAfter) || serveAfter < 0)) {
      say(`--serve-after ${String(values['serve-after'])} is not a number of milliseconds`);
      return 2;
    }
    const modeOverride = values.mode;
    if (modeOverride !== undefined && modeOverride !== 'enforce' && modeOverride !== 'audit') {
      say('--mode is enforce or audit');
      return 2;
    }
    const paths = enforcePaths(values);
    let tierReadOnly: boolean;
    let mode: 'enforce' | 'audit';
    let required: boolean;
    const frontDoor = tierName === FRONT_DOOR;
    let policy: Policy;
    let server: Policy['tiers'][number]['server'];
    try {
      policy = loadPolicy(paths.policyFile);
      const tier = frontDoor ? { readOnly: true, mode: 'enforce' as const, enforcement: 'required' } : policy.tierByName.get(tierName);
      if (!tier) {
        say(`no tier '${tierName}' in ${paths.policyFile}`);
        return 2;
      }
      tierReadOnly = tier.readOnly;
      server = 'server' in tier ? tier.server : undefined;
      mode = (modeOverride as 'enforce' | 'audit' | undefined) ?? tier.mode;
      required = tier.enforcement === 'required';
    } catch (err) {
      say((err as Error).message);
      return 2;
    }

    const install = installRoot();
    let identities;
    try {
      identities = resolveIdentities(values, true);
    } catch (err) {
      say((err as Error).message);
      return 2;
    }
    const { ctx, status } = await openEnforcement({ stateDir: paths.stateDir, install, identities, runcPath: values.runc as string | undefined });
    if (!ctx) {
      say(`cannot confine: ${status.containers.reason}`);
      return 1;
    }
    if (!status.ebpf.ok) {
      if (required) {
        say(`tier ${tierName} requires enforcement and eBPF is unavailable: ${status.ebpf.reason}`);
        return 1;
      }
      say(`eBPF unavailable, running with container and seccomp only: ${status.ebpf.reason}`);
    }

    const profiles = loadTierProfiles(paths.profilesDir, tierName, tierReadOnly);
    const dataDir = path.dirname(paths.db);
    checkDataDir(dataDir, ctx.layout);
    await prepareDataDir(dataDir, identities);

    const [cmd, ...args] = positionals;
    const resolved = resolveCommand(cmd);
    if (!resolved) {
      say(`${cmd}: no such executable on the host`);
      return 127;
    }
    const mounted = hostFiles(install).readOnly;
    const extra = (values.ro as string[] | undefined)?.map((p) => realpathSync(p)) ?? [];
    const real = realpathSync(resolved);
    if (!coveredBy(real, [...mounted, ...extra])) extra.push(real);

    const id = `exec-${tierName}-${randomBytes(4).toString('hex')}`;
    const socketDir = path.join(ctx.layout.sockets, 'exec', id);
    await prepareSocketDir(socketDir, socketDirOwner(identities, tierReadOnly));

    let proc: ConfinedProcess | undefined;
    const forward = (sig: NodeJS.Signals): void => {
      void proc?.container.signal(sig).catch(() => undefined);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, forward);
    // SIGUSR1: serve phase now (an operator's program is done starting). Handled from the
    // start: node's default for SIGUSR1 would open its inspector.
    let timer: NodeJS.Timeout | undefined;
    let serveRequested = false;
    const serveNow = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!proc?.ebpf) {
        serveRequested = true;
        return;
      }
      // The notice on stderr lets a caller act once the tighter serve phase is on.
      void proc.setPhase('serve').then(
        () => say('serve phase'),
        (err) => say(`switching to serve phase failed: ${(err as Error).message}`),
      );
    };
    process.on('SIGUSR1', serveNow);
    try {
      try {
        // The front door's confinement: its spec (host network, nothing writable), its
        // identity and its egress list from the policy, as the agent runs the proxy.
        // A tier served by an operator's server: that server's confinement (its mounts,
        // state, scratch, network and egress list), with the command in place of the server.
        const id2 = tierIdentity(identities, tierReadOnly);
        proc = server
          ? await startConfined(ctx, {
              id,
              spec: serverContainerSpec(
                { tier: tierName, readOnly: tierReadOnly, seccomp: profiles.seccomp, seccompMode: mode },
                {
                  args: [real, ...args],
                  env: [],
                  readOnly: [...server.readOnly, ...extra],
                  state: server.state,
                  socketDir,
                  scratchBytes: server.scratchMiB * 1024 * 1024,
                  hostNetwork: server.egress.length > 0,
                  uid: id2.uid,
                  gid: id2.gid,
                  pidsLimit: server.pidsLimit,
                  memoryBytes: server.memoryBytes,
                },
                id,
              ),
              stdio: 'inherit',
              mode,
              ebpf: status.ebpf.ok ? profiles.ebpf : null,
              egress: server.egress.map((e) => ({ cidr: e.cidr, port: e.port })),
            })
          : frontDoor
            ? await startConfined(ctx, {
                id,
                spec: frontDoorContainerSpec(
                  { seccomp: profiles.seccomp, seccompMode: mode },
                  { install, uid: identities.proxy.uid, gid: identities.proxy.gid, readOnly: [ctx.layout.sockets, ...extra] },
                  id,
                  { args: [real, ...args] },
                ),
                stdio: 'inherit',
                mode,
                ebpf: status.ebpf.ok ? profiles.ebpf : null,
                egress: await frontDoorEgress(policy),
              })
            : await launchConfined(ctx, {
                tier: tierName,
                readOnly: tierReadOnly,
                mode,
                profiles,
                ebpf: status.ebpf.ok,
                id,
                dataDir,
                socketDir,
                args: [real, ...args],
                extraReadOnly: extra,
                stdio: 'inherit',
              });
      } catch (err) {
        say(`cannot start the container: ${(err as Error).message}`);
        return 1;
      }
      const running = proc;
      // "After start" counts from the command's own exec: runc's steps inside the container
      // before it belong to the boot phase.
      if (running.ebpf && (serveRequested || serveAfter !== undefined) && (await running.container.commandStarted())) {
        if (serveRequested) serveNow();
        else timer = setTimeout(serveNow, serveAfter);
      }
      const exit = await running.container.exited;
      if (timer) clearTimeout(timer);
      const counters = await running.forget();
      if (typeof values.report === 'string') {
        await writeFile(values.report, JSON.stringify({ tier: tierName, mode, exit, pid: running.container.pid, ebpf: running.ebpf, counters }, null, 2) + '\n');
      }
      return exit.code;
    } finally {
      for (const s of signals) process.off(s, forward);
      process.off('SIGUSR1', serveNow);
      await proc?.container.cleanup().catch(() => undefined);
      if (existsSync(socketDir)) await rm(socketDir, { recursive: true, force: true });
    }
  },
};
