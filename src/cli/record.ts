// `fhirguard record`: records what workers really do into tight per-tier profiles.
//   fhirguard record [--tier <name>]... [--workload <file>] [--out <dir>] [--prove]
//   fhirguard record --cgroup <dir> --duration <s> --out <dir> [--name <name>]
// Exit status: 0 done, 1 a recording or a proof failed (or this host cannot record), 2 bad usage.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { DEFAULT_USER_NAMES, IDENTITY_OPTIONS, resolveIdentities, resolveIdentity } from '../enforce/identities';
import { frontDoorReportMarkdown, recordFrontDoor } from '../record/record-front-door';
import { DEFAULT_STATE_DIR, unsearchableAncestor } from '../enforce/layout';
import { installRoot } from '../install/root';
import { defaultDockerAllowFile } from '../profile/reference';
import { cgroupReportMarkdown, recordCgroup } from '../record/cgroup-record';
import { recordTiers } from '../record/record-tiers';
import { recordServers, serversReportMarkdown } from '../record/record-servers';
import { stopEverything } from '../record/tier-run';
import { reportMarkdown } from '../record/report';
import { loadWorkload } from '../record/workload';
import { loadSeccompProfile } from '../enforce/seccomp';
import { runnableInstall } from '../install/stage';
import { loadPolicy, PolicyError } from '../policy';
import { LOG_LEVEL_OPTION, type Command } from './command';

type Values = Record<string, string | boolean | string[] | undefined>;

class UsageError extends Error {}

function say(line: string): void {
  process.stderr.write(`fhirguard record: ${line}\n`);
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function count(values: Values, name: string, fallback: number | undefined): number | undefined {
  const v = str(values, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1 (got '${v}')`);
  return n;
}

async function recordCgroupCommand(values: Values, log: pino.Logger): Promise<number> {
  const cgroupDir = path.resolve(str(values, 'cgroup')!);
  const seconds = Number(str(values, 'duration'));
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--cgroup needs --duration <seconds> (> 0)');
  const out = str(values, 'out');
  if (!out) throw new UsageError("--cgroup needs --out <dir>: the profiles of another server do not belong in fhirguard's own profiles/");
  const name = str(values, 'name') ?? path.basename(cgroupDir).replace(/[^A-Za-z0-9_.-]/g, '_');
  const template = str(values, 'template');
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  try {
    const report = await recordCgroup({
      cgroupDir,
      durationMs: seconds * 1000,
      name,
      outDir: path.resolve(out),
      ...(template ? { template: loadSeccompProfile(path.resolve(template)) } : {}),
      signal: abort.signal,
      progress: say,
    });
    const reportsDir = path.join(path.resolve(out), 'reports');
    mkdirSync(reportsDir, { recursive: true });
    writeFileSync(path.join(reportsDir, `${name}.json`), JSON.stringify(report, null, 2) + '\n');
    writeFileSync(path.join(reportsDir, `${name}.md`), cgroupReportMarkdown(report));
    process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : cgroupReportMarkdown(report));
    for (const w of report.warnings) say(`warning: ${w}`);
    return report.seen.length > 0 ? 0 : 1;
  } catch (err) {
    log.debug({ err }, 'recording the cgroup failed');
    say((err as Error).message);
    return 1;
  } finally {
    process.off('SIGINT', stop);
  }
}

async function recordFrontDoorCommand(values: Values, log: pino.Logger): Promise<number> {
  if (process.getuid?.() !== 0) throw new UsageError('recording the front door needs root (containers and the eBPF recorder)');
  const shipped = installRoot();
  const policyFile = path.resolve(str(values, 'policy') ?? path.join(shipped, 'profiles', 'policy.yaml'));
  const profilesDir = path.resolve(str(values, 'profiles') ?? path.join(shipped, 'profiles'));
  const corpus = str(values, 'corpus');
  if (!corpus || !existsSync(path.resolve(corpus)))
    throw new UsageError('give --corpus <dir> (Synthea transaction bundles, one patient a file): the front door is recorded under the default workloads');
  const stateDir = path.resolve(str(values, 'state-dir') ?? DEFAULT_STATE_DIR);
  const outDir = path.resolve(str(values, 'out') ?? profilesDir);
  const report = await recordFrontDoor(
    {
      policy: loadPolicy(policyFile),
      policyFile,
      profilesDir,
      outDir,
      stateDir,
      install: runnableInstall(stateDir),
      identities: resolveIdentities(values, true),
      corpusDir: path.resolve(corpus),
      patients: count(values, 'patients', undefined),
      runcPath: str(values, 'runc'),
      prove: values.prove === true,
      log,
      progress: say,
    },
    ['fhirguard', ...process.argv.slice(2)].join(' '),
  );
  const reportsDir = path.join(outDir, 'reports');
  mkdirSync(reportsDir, { recursive: true });
  writeFileSync(path.join(reportsDir, 'proxy.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(path.join(reportsDir, 'proxy.md'), frontDoorReportMarkdown(report));
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : frontDoorReportMarkdown(report));
  if (!report.written) say('the proof failed: the front door profiles were not written');
  return report.written ? 0 : 1;
}

async function recordServerCommand(values: Values, log: pino.Logger): Promise<number> {
  if (process.getuid?.() !== 0) throw new UsageError('recording a server needs root (containers and the eBPF recorder)');
  const policyFile = str(values, 'policy');
  if (!policyFile) throw new UsageError('--server needs --policy <file>: the policy whose tiers have a server: block');
  const policy = loadPolicy(path.resolve(policyFile));
  const templates = str(values, 'profiles');
  if (!templates) throw new UsageError('--server needs --profiles <dir>: the templates the recording starts from (seccomp/<tier>.json, ebpf/<tier>.json)');
  const corpus = str(values, 'corpus');
  if (!corpus || !existsSync(path.resolve(corpus))) throw new UsageError('give --corpus <dir> (Synthea transaction bundles, one patient a file): servers are recorded under the default workloads');
  const out = str(values, 'out');
  if (!out) throw new UsageError('--server needs --out <dir>: where the recorded profiles of the server go');
  const stateDir = path.resolve(str(values, 'state-dir') ?? DEFAULT_STATE_DIR);
  const report = await recordServers(
    {
      policy,
      templateDir: path.resolve(templates),
      outDir: path.resolve(out),
      install: runnableInstall(stateDir),
      identities: resolveIdentities(values, true),
      corpusDir: path.resolve(corpus),
      patients: count(values, 'patients', undefined),
      runcPath: str(values, 'runc'),
      ...(str(values, 'restart-db') ? { restartDb: str(values, 'restart-db') } : {}),
      prove: values.prove === true,
      log,
      progress: say,
    },
    ['fhirguard', ...process.argv.slice(2)].join(' '),
  );
  const reportsDir = path.join(path.resolve(out), 'reports');
  mkdirSync(reportsDir, { recursive: true });
  writeFileSync(path.join(reportsDir, 'servers.json'), JSON.stringify(report, null, 2) + '\n');
  writeFileSync(path.join(reportsDir, 'servers.md'), serversReportMarkdown(report));
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : serversReportMarkdown(report));
  const failed = report.tiers.filter((t) => !t.written).map((t) => t.tier);
  if (failed.length) say(`the proof failed for ${failed.join(', ')}: their profiles were not written`);
  return failed.length ? 1 : 0;
}

async function recordTierCommand(values: Values, log: pino.Logger): Promise<number> {
  const shipped = installRoot();
  const policyFile = path.resolve(str(values, 'policy') ?? path.join(shipped, 'profiles', 'policy.yaml'));
  const profilesDir = path.resolve(str(values, 'profiles') ?? path.join(shipped, 'profiles'));
  const policy = loadPolicy(policyFile);
  const asked = (values.tier as string[] | undefined) ?? [];
  const unknown = asked.filter((t) => !policy.tierByName.has(t));
  if (unknown.length) throw new UsageError(`no tier ${unknown.map((t) => `'${t}'`).join(', ')} in ${policyFile}`);
  // In the policy's order, whatever the order on the command line.
  const tiers = asked.length ? policy.tiers.map((t) => t.name).filter((t) => asked.includes(t)) : policy.tiers.map((t) => t.name);
  const workloadFile = str(values, 'workload');
  const holdoutFile = str(values, 'holdout');
  if ((workloadFile || holdoutFile) && tiers.length !== 1) throw new UsageError('--workload and --holdout go with exactly one --tier');
  const prove = values.prove === true;
  if (workloadFile && prove && !holdoutFile) throw new UsageError('--prove with your own --workload needs a --holdout workload (not the one recorded)');
  const workload = workloadFile ? loadWorkload(path.resolve(workloadFile)) : undefined;
  const holdout = holdoutFile ? loadWorkload(path.resolve(holdoutFile)) : undefined;
  for (const w of [workload, holdout]) if (w && w.tier !== tiers[0]) throw new UsageError(`${w.name} is a workload for tier '${w.tier}', not '${tiers[0]}'`);
  // The default workloads are made from a corpus of Synthea patient bundles, which fhirguard
  // does not ship: without --workload, --corpus names one.
  const corpus = str(values, 'corpus');
  if (!workload && !corpus) throw new UsageError('give --corpus <dir> (Synthea transaction bundles, one patient a file) for the default workloads, or --workload <file>');
  const corpusDir = corpus ? path.resolve(corpus) : '';
  if (!workload && !existsSync(corpusDir)) throw new UsageError(`no corpus at ${corpusDir}: give --corpus <dir> of Synthea transaction bundles, or --workload <file>`);
  const dockerFile = str(values, 'docker-default') ? path.resolve(str(values, 'docker-default')!) : defaultDockerAllowFile();
  const outDir = path.resolve(str(values, 'out') ?? profilesDir);
  const stateDir = path.resolve(str(values, 'state-dir') ?? DEFAULT_STATE_DIR);
  const identity = resolveIdentity(str(values, 'worker-user') ?? DEFAULT_USER_NAMES.writer, process.getuid?.() === 0);
  // What the recorded workers, the plain ones and the crashing writer run: as root, the
  // install staged into the state directory. The plain ones and the writer see the host's
  // directories as the worker identity does.
  const install = runnableInstall(stateDir);
  const blocked = process.getuid?.() === 0 ? unsearchableAncestor(path.join(install, 'bin', 'fhirguard'), identity) : null;
  if (blocked)
    throw new UsageError(
      `the recorded workers (uid ${identity.uid}) cannot reach the install staged in ${install}: ${blocked} is closed to them; give a --state-dir they can reach, or open ${blocked} (chmod o+x)`,
    );
  const command = ['fhirguard', ...process.argv.slice(2)].join(' ');
  const result = await recordTiers({
    command,
    policy,
    tiers,
    install,
    profilesDir,
    outDir,
    stateDir,
    runcPath: str(values, 'runc'),
    identity,
    corpusDir,
    patients: count(values, 'patients', undefined),
    workload,
    holdout,
    prove,
    runs: count(values, 'runs', 1)!,
    saveWorkloads: str(values, 'save-workloads') ? path.resolve(str(values, 'save-workloads')!) : undefined,
    dockerDefaultFile: existsSync(dockerFile) ? dockerFile : null,
    workerLogLevel: str(values, 'worker-log-level') ?? 'info',
    log,
    progress: say,
  });
  process.stdout.write(values.json ? JSON.stringify(result.report, null, 2) + '\n' : reportMarkdown(result.report));
  for (const t of result.report.tiers) {
    if (t.failures.length) say(`${t.tier}: ${t.failures.length} workload steps did not answer as expected while recording (see the report)`);
    if (t.pagesRefused.length) say(`${t.tier}: ${t.pagesRefused.length} page links were refused before reaching the worker (see the report)`);
  }
  if (result.written.length) say(`profiles written to ${outDir} for ${result.written.join(', ')}; reports in ${path.join(outDir, 'reports')}`);
  if (result.failedProofs.length) {
    say(`the proof failed for ${result.failedProofs.join(', ')}: their profiles were not written`);
    return 1;
  }
  return 0;
}

export const recordCommand: Command = {
  name: 'record',
  summary: "record what each tier's workers really do into tight seccomp and eBPF profiles (root)",
  usage: '[--tier <name>]... [--workload <file>] [--out <dir>] [--prove] | --cgroup <dir> --duration <s> --out <dir>',
  options: {
    tier: { type: 'string', multiple: true, arg: '<name>', help: 'tier to record (repeatable; default every tier of the policy)' },
    server: {
      type: 'boolean',
      help: "record the tiers an operator's server serves (policy server: blocks), in their containers as the agent runs them; needs --policy, --profiles (templates) and --out",
    },
    'restart-db': { type: 'string', arg: '<command>', help: "with --server: a shell command that restarts the servers' database mid-workload" },
    'front-door': { type: 'boolean', help: "record the proxy instead, in its container as the agent runs it, under every tier's default workload (writes seccomp/proxy.json, ebpf/proxy.json)" },
    ...IDENTITY_OPTIONS,
    workload: { type: 'string', arg: '<file>', help: 'JSON workload to drive the tier with (default: made from the Synthea corpus, everything the policy routes to the tier)' },
    holdout: { type: 'string', arg: '<file>', help: 'held-out JSON workload for --prove with your own --workload' },
    prove: { type: 'boolean', help: 'replay a held-out workload with the new profiles enforced; write them only if nothing broke' },
    out: { type: 'string', arg: '<dir>', help: 'where seccomp/<tier>.json, ebpf/<tier>.json and reports/ go (default: the --profiles directory)' },
    profiles: {
      type: 'string',
      env: 'FHIRGUARD_PROFILES',
      arg: '<dir>',
      help: 'profiles the recording starts from: their argument filters, refusals and comments are kept (default: the shipped profiles/)',
    },
    policy: { type: 'string', env: 'FHIRGUARD_POLICY', arg: '<file>', help: 'policy file naming the tiers and routing the workload (default: the shipped profiles/policy.yaml)' },
    corpus: { type: 'string', arg: '<dir>', help: 'Synthea transaction bundles (one patient a file) the default workloads are made from; needed unless --workload' },
    patients: { type: 'string', arg: '<n>', help: 'patients per half of the corpus in the default workloads (default all)' },
    runs: { type: 'string', arg: '<n>', default: '1', help: 'record the workload this many times; the profile is the union, the report names what varied' },
    'save-workloads': { type: 'string', arg: '<dir>', help: 'also write the workloads used, as JSON (a starting point for your own)' },
    cgroup: { type: 'string', arg: '<dir>', help: "record a running container through its cgroup v2 directory (Docker's, Kubernetes')" },
    duration: { type: 'string', arg: '<seconds>', help: 'how long to record the --cgroup (Ctrl-C ends it early)' },
    name: { type: 'string', arg: '<name>', help: 'profile name for --cgroup (default: the directory name)' },
    template: { type: 'string', arg: '<file>', help: 'seccomp profile whose rules, argument filters and refusals a --cgroup recording keeps' },
    'state-dir': { type: 'string', env: 'FHIRGUARD_STATE_DIR', arg: '<dir>', default: DEFAULT_STATE_DIR, help: "root's state: runc state and bundles" },
    runc: { type: 'string', env: 'FHIRGUARD_RUNC', arg: '<path>', help: 'the runc binary (default: found on PATH, /usr/sbin)' },
    'worker-user': {
      type: 'string',
      env: 'FHIRGUARD_WORKER_USER',
      arg: '<name|uid:gid>',
      default: DEFAULT_USER_NAMES.writer,
      help: 'identity of the recorded workers (a missing named system user is made)',
    },
    'worker-log-level': { type: 'string', arg: '<level>', default: 'info', help: "the recorded worker's log level (as the agent gives it: it decides what the worker writes)" },
    'docker-default': { type: 'string', arg: '<file>', help: "list of what Docker's default profile allows (default: the copy shipped in profiles/reference/)" },
    json: { type: 'boolean', help: 'print the report as JSON instead of Markdown' },
    'log-level': { ...LOG_LEVEL_OPTION, default: 'warn' },
  },
  details: [
    "Each tier's reference worker runs in its container under a seccomp filter that allows and logs",
    "(the template's refusals kept) and the eBPF recorder, registered on the container's cgroup before",
    "runc starts it, so runc's steps inside the container are recorded too. Boot, serve (from the",
    'first healthy GET /metadata) and shutdown (SIGTERM) are kept apart. The workload goes through',
    'the real proxy; its data is loaded first by a plain worker, outside the recording. It ends',
    "with a writer that dies mid-commit, which the tier's worker must get through (503 while a",
    'read-only tier waits for a writer to roll the commit back; a writing tier rolls it back).',
    "The seccomp profile is boot-under-the-filter ∪ serve ∪ shutdown on the template's rules; the",
    'eBPF profile is the serve set. Needs root, runc and the eBPF recorder.',
  ].join('\n'),
  async run(values) {
    const log = pino({ level: String(values['log-level'] ?? 'warn'), name: 'fhirguard-record' }, pino.destination({ dest: 2, sync: true }));
    if (values.server === true) {
      return recordServerCommand(values, log).catch((err: unknown) => {
        say((err as Error).message);
        return err instanceof UsageError ? 2 : 1;
      });
    }
    if (values['front-door'] === true) {
      return recordFrontDoorCommand(values, log).catch((err: unknown) => {
        say((err as Error).message);
        return err instanceof UsageError ? 2 : 1;
      });
    }
    if (str(values, 'cgroup'))
      return recordCgroupCommand(values, log).catch((err: unknown) => {
        say((err as Error).message);
        return err instanceof UsageError ? 2 : 1;
      });
    // Interrupted: stop the containers this command started, then go.
    const interrupted = (sig: NodeJS.Signals): void => {
      say(`${sig}: stopping the recorded workers`);
      void stopEverything().finally(() => process.exit(130));
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    try {
      return await recordTierCommand(values, log);
    } catch (err) {
      if (err instanceof UsageError || err instanceof PolicyError) {
        say(err.message);
        return 2;
      }
      say((err as Error).message);
      log.debug({ err }, 'record failed');
      return 1;
    } finally {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
    }
  },
};
