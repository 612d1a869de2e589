// `fhirguard record --front-door`: records the proxy the way `record --tier` records workers.
// A real agent runs every tier's workers (the shipped profiles, enforced) and serves its API;
// the proxy runs as the agent runs it (agent/front-door.ts), in its container, as its own
// identity, under a seccomp filter that allows and logs (the template's refusals kept) and
// the eBPF recorder. Through it go the data set-up and every candidate step of the default
// workloads (whatever tier the policy routes them to, and the requests it refuses), malformed
// requests the door must refuse, clients that hang up, and scrapes of its admin listener. Boot, serve and shutdown are kept
// apart. The proof replays the held-out half with the new profiles enforced: no violation, no
// restart, every request answered as while recording, else nothing is written.

import { mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { Agent } from '../agent/agent';
import { serveApi } from '../agent/api';
import { FrontDoor, type FrontDoorMode } from '../agent/front-door';
import type { Policy } from '../policy';
import type { CgroupCounters, RecordedSets } from '../enforce/bpf';
import { FRONT_DOOR } from '../enforce/confine';
import { openEnforcement } from '../enforce/open';
import { ebpfProfilePath } from '../enforce/ebpf-profile';
import type { Identities } from '../enforce/identities';
import { defaultDbPath } from '../enforce/layout';
import { seccompProfilePath } from '../enforce/seccomp';
import { loadTierProfiles, type TierProfiles } from '../enforce/tier-profiles';
import { loadDataset, type Dataset } from './corpus';
import { freePort } from './ports';
import { candidateSteps, setupSteps } from './default-workloads';
import { drive, type DriveResult } from './drive';
import { ebpfFromRecording, ebpfJson, seccompFromRecording, seccompJson } from './profile-writer';
import { KEPT_UNRECORDED } from './variation';
import type { Step } from './workload';

export interface RecordFrontDoorOptions {
  policy: Policy;
  policyFile: string;
  /** The shipped profiles: the workers' to run under, the proxy's as the template. */
  profilesDir: string;
  outDir: string;
  stateDir: string;
  install: string;
  identities: Identities;
  corpusDir: string;
  patients?: number;
  runcPath?: string;
  prove: boolean;
  log: Logger;
  progress: (line: string) => void;
}

export interface FrontDoorRun {
  mode: FrontDoorMode;
  workload: string;
  requests: number;
  statuses: Record<string, number>;
  restarts: number;
  /** eBPF violations by syscall (enforce: 0 for a complete profile). */
  violations: Record<string, number>;
  sets: RecordedSets | null;
}

export interface FrontDoorRecordReport {
  command: string;
  recording: FrontDoorRun;
  proof: FrontDoorRun | null;
  seccomp: { allowed: number; outsideTemplate: string[]; dropped: string[] };
  serve: string[];
  written: boolean;
}

/**
 * What a new connection to a TCP upstream adds to the front door's calls (node reads the
 * socket's own address): the recording's policy serves every tier from Unix sockets, an
 * operator's may name TCP upstreams, and the front door opens new connections to them while
 * it serves (a test with one was killed at getsockname).
 */
const TCP_UPSTREAM: readonly string[] = ['getsockname', 'getpeername'];

/** Requests a front door must refuse at its own level: each goes through its refusal paths. */
const MALFORMED: Step[] = [
  { method: 'POST', path: '/Patient', body: '{"resourceType": "Patient", ', expect: [400], label: 'a truncated JSON body' },
  { method: 'POST', path: '/Patient', body: { resourceType: 'Patient', birthDate: 'yesterday' }, expect: [400], label: 'an invalid resource' },
  { method: 'GET', path: '/NoSuchType/1', expect: [404], label: 'an unknown resource type' },
  { method: 'GET', path: '/Patient?no-such-parameter=1', expect: [400], label: 'an unknown search parameter' },
  { method: 'POST', path: '/Patient', headers: { 'content-type': 'text/plain' }, body: 'x', expect: [415], label: 'a body that is not FHIR' },
  { method: 'GET', path: '/Patient/%zz', expect: [400], label: 'bad percent-encoding' },
];

function askAdmin(address: string, p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const [host, port] = address.split(':');
    const req = http.get({ host, port: Number(port), path: p, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
  });
}

/** Clients that leave once their answer has started. */
async function hangUps(origin: string, paths: string[]): Promise<void> {
  for (const p of paths) {
    await new Promise<void>((resolve) => {
      const req = http.get(`${origin}/fhir${p}`, { agent: false, headers: { accept: 'application/fhir+json' } }, (res) => {
        res.once('data', () => req.destroy());
        res.once('close', resolve);
      });
      req.once('error', () => resolve());
    });
  }
}

function merge(into: DriveResult, more: DriveResult): void {
  into.requests += more.requests;
  for (const [k, v] of Object.entries(more.statuses)) into.statuses[k] = (into.statuses[k] ?? 0) + v;
}

export async function recordFrontDoor(o: RecordFrontDoorOptions, command: string): Promise<FrontDoorRecordReport> {
  const root = mkdtempSync(path.join(tmpdir(), 'fhirguard-record-proxy-'));
  // The workers and the proxy pass through it to what is theirs, as through a state directory.
  chmodSync(root, 0o711);
  const stateDir = path.join(root, 'state');
  mkdirSync(stateDir, { mode: 0o711 });
  const socketPath = path.join(stateDir, 'agent.sock');
  const { ctx, status } = await openEnforcement({ stateDir, install: o.install, identities: o.identities, runcPath: o.runcPath });
  if (!ctx?.bpf) throw new Error(`the eBPF recorder is not available here: ${status.ebpf.reason ?? status.containers.reason}`);
  const agent = new Agent({
    policy: o.policy,
    profilesDir: o.profilesDir,
    stateDir,
    db: defaultDbPath(stateDir),
    install: o.install,
    identities: o.identities,
    log: o.log,
    workerLogLevel: 'warn',
    runcPath: o.runcPath,
  });
  let api: { close(): Promise<void> } | undefined;
  try {
    await agent.start();
    api = await serveApi(agent, { socketPath, gid: o.identities.proxy.gid, log: o.log });
    const template = loadTierProfiles(o.profilesDir, FRONT_DOOR, true);
    const run = async (mode: FrontDoorMode, profiles: TierProfiles, data: Dataset): Promise<FrontDoorRun> => {
      const [listen, admin] = [await freePort(), await freePort()];
      const adminAddress = `127.0.0.1:${admin}`;
      let last: CgroupCounters | null = null;
      const door = new FrontDoor({
        args: ['--listen', `127.0.0.1:${listen}`, '--admin', adminAddress],
        policy: o.policy,
        policyFile: o.policyFile,
        agentSocket: socketPath,
        stateDir,
        install: o.install,
        identities: o.identities,
        ctx,
        profiles,
        mode,
        ebpf: true,
        instance: path.basename(root).slice(-6),
        logLevel: 'warn',
        log: o.log,
        onRetired: (c) => (last = c),
      });
      door.start();
      const deadline = Date.now() + 180_000;
      while (!(await askAdmin(adminAddress, '/readyz'))) {
        if (Date.now() > deadline) throw new Error('the front door did not become ready within 180 s');
        await new Promise((r) => setTimeout(r, 250));
      }
      const target = { origin: `http://127.0.0.1:${listen}`, base: '/fhir' };
      o.progress(`${mode}: ${data.half} half through the front door`);
      const result = await drive(target, setupSteps(data));
      merge(result, await drive(target, [...candidateSteps(data), ...MALFORMED]));
      merge(
        result,
        await drive(
          target,
          candidateSteps(data).filter((s) => s.method === 'GET'),
          { concurrency: 8 },
        ),
      );
      await hangUps(target.origin, ['/metadata', '/Patient?_count=50']);
      // What Prometheus and a load balancer ask of the admin listener.
      for (const p of ['/metrics', '/healthz', '/readyz', '/metrics']) await askAdmin(adminAddress, p);
      const restarts = door.info().restarts;
      await door.stop();
      const c = last as CgroupCounters | null;
      const violations = Object.fromEntries(
        Object.entries(c?.syscalls ?? {})
          .filter(([, s]) => s.violations > 0)
          .map(([n, s]) => [n, s.violations]),
      );
      return { mode, workload: `synthea ${data.half} half`, requests: result.requests, statuses: result.statuses, restarts, violations, sets: c?.recorded ?? null };
    };

    const recording = await run('record', template, loadDataset(o.corpusDir, 'recording', { patientsPerHalf: o.patients }));
    if (!recording.sets) throw new Error('the recorder returned no sets for the front door');
    const s = recording.sets;
    const kept = [...KEPT_UNRECORDED, ...TCP_UPSTREAM].filter((n) => template.seccompAllowed.includes(n));
    const provenance = `from the front door in its container (boot after runc installed the filter, serve, shutdown), ${recording.workload}: every candidate step of the default workloads, malformed requests, clients that hang up and scrapes of the admin listener. Kept whether recorded or not: node's runtime calls that come on its own timing, and what a new connection to a TCP upstream adds, where the template allows them.`;
    const seccomp = seccompFromRecording(template.seccomp, [...s.bootSeccomp, ...s.serve, ...s.shutdown, ...kept], provenance);
    const ebpf = ebpfFromRecording(template.ebpf, [...s.serve, ...kept.filter((n) => template.ebpf.serve.includes(n) || s.serve.includes(n) || TCP_UPSTREAM.includes(n))], provenance);
    const staged = path.join(root, 'profiles');
    mkdirSync(path.join(staged, 'seccomp'), { recursive: true });
    mkdirSync(path.join(staged, 'ebpf'), { recursive: true });
    writeFileSync(seccompProfilePath(staged, FRONT_DOOR), seccompJson(seccomp.profile));
    writeFileSync(ebpfProfilePath(staged, FRONT_DOOR), ebpfJson(ebpf));

    let proof: FrontDoorRun | null = null;
    if (o.prove) {
      proof = await run('enforce', loadTierProfiles(staged, FRONT_DOOR, true), loadDataset(o.corpusDir, 'holdout', { patientsPerHalf: o.patients }));
    }
    const passed = !proof || (Object.keys(proof.violations).length === 0 && proof.restarts === 0);
    if (passed) {
      for (const sub of ['seccomp', 'ebpf']) mkdirSync(path.join(o.outDir, sub), { recursive: true });
      writeFileSync(seccompProfilePath(o.outDir, FRONT_DOOR), seccompJson(seccomp.profile));
      writeFileSync(ebpfProfilePath(o.outDir, FRONT_DOOR), ebpfJson(ebpf));
    }
    return {
      command,
      recording,
      proof,
      seccomp: { allowed: seccomp.profile.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names).length, outsideTemplate: seccomp.outsideTemplate, dropped: seccomp.dropped },
      serve: ebpf.serve,
      written: passed,
    };
  } finally {
    await api?.close();
    await agent.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export function frontDoorReportMarkdown(r: FrontDoorRecordReport): string {
  const run = (x: FrontDoorRun): string =>
    `- ${x.mode}, ${x.workload}: ${x.requests} requests (${Object.entries(x.statuses)
      .sort()
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}), ${x.restarts} restarts, violations: ${Object.keys(x.violations).length ? JSON.stringify(x.violations) : 'none'}`;
  return [
    `# Front door (proxy) profiles`,
    '',
    `Recorded by \`${r.command}\`.`,
    '',
    run(r.recording),
    ...(r.proof ? [run(r.proof)] : ['- not proved (no --prove)']),
    '',
    `seccomp: ${r.seccomp.allowed} calls allowed (without argument filters counted once each); used outside the template: ${r.seccomp.outsideTemplate.join(', ') || 'none'}; the template allowed and the recording never saw: ${r.seccomp.dropped.join(', ') || 'none'}.`,
    '',
    `eBPF serve set (${r.serve.length}): ${r.serve.join(', ')}.`,
    '',
    r.written ? 'Written.' : 'NOT written: the proof failed.',
    '',
  ].join('\n');
}
