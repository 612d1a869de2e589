// HAPI FHIR JPA on PostgreSQL as the operator's own server, confined per tier by the real
// agent (root): examples/hapi/policy.yaml (rewritten to this test's PostgreSQL and jar) with
// the profiles recorded from HAPI itself (examples/hapi/profiles), mode enforce, eBPF in its
// serve phase, the front door in front, statements signed for the jar and checked before
// every start. The shared FHIR cases HAPI supports go through the front door to the two
// HAPI tiers: every result right, no violation, no restart. Then what must not work from
// inside a HAPI tier's confinement, the database going away under it, a tampered jar, and a
// rollout under load.

import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, chownSync, cpSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkerInfo } from '../../src/agent-api/client';
import { resolveIdentities } from '../../src/enforce/identities';
import { freePort } from '../../src/record/ports';
import { seccompKills, SIGSYS_EXIT } from '../../src/enforce/seccomp-kills';
import { restCases } from '../fhir-cases';
import { frontDoorCases } from '../fhir-cases/front-door';
import { expectOutcome, expectStatus, patient, proxyTarget, staleUnsupported, type CaseOptions, type FhirTarget } from '../fhir-cases/target';
import { killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { buildAttack, FHIRGUARD, outcomes, procStatus, removeDir, requireEnforcement, runExec, shortTempDir } from '../helpers/confined';
import { HAPI_PROFILES, hapiJar, hapiWorld, type HapiWorld } from '../helpers/hapi';
import { closeClients, send } from '../helpers/http-client';
import { poll } from '../helpers/poll';
import { underLoad } from '../rollout/workload';

const execFileAsync = promisify(execFile);

const TIERS = ['read', 'write'];

/**
 * The shared cases HAPI does not support as the reference worker does, each with the reason.
 * Everything else runs against HAPI unchanged.
 */
const HAPI: CaseOptions = {
  unsupported: {
    'states the interactions, search parameters and operations implemented':
      "the front door states what the policy lets through and HAPI declares: HAPI's own resource list, parameters and operations, and no system-level batch",
    'create assigns the id and meta; read returns the stored resource': 'HAPI stores 16 characters of the request id in meta.source and answers the create with all of it',
    'every update and delete makes a version; old versions stay readable; a deleted resource is 410': 'HAPI sends no ETag with a delete',
    'update creates a resource at a new id (update-as-create)': 'HAPI answers an update that creates with Content-Location only, no Location',
    'If-Match: a stale version is 412 and changes nothing; the current one passes': 'HAPI answers a stale If-Match with 409 Conflict, not 412',
    'a patch that cannot apply, or that breaks the resource, is 422 and changes nothing': 'HAPI answers a patch that cannot apply with 400, not 422',
    'type and system history page with _count and filter with _since': 'HAPI makes no new version for an update that changes nothing, and pages history with _getpages rather than _offset',
    'conditional update: none → create, one → update it, several → 412, wrong id → 400': 'HAPI lets a conditional update whose body names another id through',
    'a transaction whose entry fails at the worker after others were written is rolled back entirely':
      "HAPI fails the entry's stale If-Match with 409, not 412 (the rollback itself holds: checked by the case's other assertions only under the reference worker)",
    'batch entries succeed or fail independently; reads run too': "HAPI fails a batch entry's stale If-Match with 409 Conflict, not 412",
    'dates, quantities, :missing, :text, :contains, accents, _sort, _elements, POST _search':
      'HAPI matches a partial date against a range (ge2020-02 & le2020-04) by the bounds of both, counting fewer',
    'number and uri parameters': 'HAPI does not index RiskAssessment.prediction.probability[x] for the probability parameter',
    'Patient compartment search': 'HAPI JPA serves no compartment searches ([base]/Patient/[id]/Observation); Observation?patient= is its way',
    'refuses what it cannot honour': 'HAPI honours what the reference worker refuses',
    '$validate at instance level checks the stored resource, and mode=delete': "HAPI's instance $validate words its outcome differently and ignores mode=delete",
    'methods, media types and paths': 'HAPI answers GET [base] (a system search without parameters) with 400, where the reference worker says 405',
  },
};

let dir: string;
let world: HapiWorld;
let agent: AgentProcess;
let fhirUrl: string;
let adminUrl: string;
let target: FhirTarget;
let attack: string;
let keys: { pub: string; key: string };
const changes: WorkerInfo[] = [];
let watch: { stop(): void } | undefined;

function sign(profiles = HAPI_PROFILES): void {
  execFileSync(FHIRGUARD, ['sign', '--policy', world.policyFile, '--profiles', profiles, '--key', keys.key, '--attestations', path.join(dir, 'attestations')], { stdio: 'pipe' });
}

async function servingWorkers(): Promise<WorkerInfo[]> {
  return waitWorkers(agent.client, (ws) => TIERS.every((t) => ws.some((w) => w.tier === t && w.state === 'serving')), 400_000, agent.log);
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('hapi');
  // PostgreSQL's user and the tiers' identities pass through the test's directory.
  chmodSync(dir, 0o711);
  attack = buildAttack(dir);
  world = await hapiWorld(dir, hapiJar());
  execFileSync(FHIRGUARD, ['keygen', '--out', path.join(dir, 'keys'), '--name', 'hapi'], { stdio: 'pipe' });
  keys = { pub: path.join(dir, 'keys', 'hapi.pub'), key: path.join(dir, 'keys', 'hapi.key') };
  sign();
  const [listen, admin] = [await freePort(), await freePort()];
  fhirUrl = `http://127.0.0.1:${listen}/fhir`;
  adminUrl = `http://127.0.0.1:${admin}`;
  agent = await startAgent(dir, [
    '--policy',
    world.policyFile,
    '--profiles',
    HAPI_PROFILES,
    '--trusted-keys',
    keys.pub,
    '--attestations',
    path.join(dir, 'attestations'),
    '--front-door',
    JSON.stringify(['--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`]),
  ]);
  await servingWorkers();
  await poll('the front door to be ready', async () => (await fetch(`${adminUrl}/readyz`).catch(() => null))?.status === 200, { timeoutMs: 120_000, detail: () => agent.log().slice(-3000) });
  target = proxyTarget(fhirUrl);
  watch = agent.client.watch((w) => {
    if (w.state !== 'serving') changes.push(w);
  });
}, 900_000);

afterAll(async () => {
  watch?.stop();
  closeClients();
  if (agent) await agent.stop();
  killLeftoverAgents();
  world?.stop();
  removeDir(dir);
}, 120_000);

describe('HAPI FHIR in its tiers', () => {
  test('each tier runs HAPI confined: its identity, no capabilities, seccomp, own namespaces but the network, nothing writable but its socket and /tmp', async () => {
    const ws = await servingWorkers();
    const ids = resolveIdentities({}, false);
    const e = await agent.client.enforcement();
    expect(e.degraded).toBe(false);
    for (const t of e.tiers) {
      expect({ tier: t.tier, status: t.status, mode: t.mode, trust: t.trust?.status, subject: t.trust?.subject?.kind }).toEqual({
        tier: t.tier,
        status: 'running',
        mode: 'enforce',
        trust: 'verified',
        subject: 'server',
      });
      for (const m of ['seccomp', 'ebpf', 'mount_ro', 'netns'] as const) expect({ tier: t.tier, m, active: t.mechanisms[m].active }).toEqual({ tier: t.tier, m, active: true });
      expect(t.mechanisms.netns.reason).toContain(`connections only to 127.0.0.1:${world.port}`);
    }
    for (const w of ws.filter((x) => x.state === 'serving')) {
      const s = procStatus(w.pid!);
      const who = w.tier === 'read' ? ids.reader : ids.writer;
      expect({ tier: w.tier, uid: s.Uid.split(/\s+/), caps: s.CapEff, nnp: s.NoNewPrivs, seccomp: s.Seccomp }).toEqual({
        tier: w.tier,
        uid: Array(4).fill(String(who.uid)),
        caps: '0000000000000000',
        nnp: '1',
        seccomp: '2',
      });
      expect(readFileSync(`/proc/${w.pid}/cmdline`, 'utf8').split('\0')[0]).toMatch(/\/java$/);
      for (const ns of ['pid', 'mnt', 'ipc', 'uts']) expect({ ns, own: readlinkSync(`/proc/${w.pid}/ns/${ns}`) !== readlinkSync(`/proc/self/ns/${ns}`) }).toEqual({ ns, own: true });
      const writable = readFileSync(`/proc/${w.pid}/mountinfo`, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '))
        .filter((f) => f[5].split(',').includes('rw') && !['/proc', '/dev'].some((p) => f[4] === p || f[4].startsWith(`${p}/`)))
        .map((f) => f[4]);
      expect(writable.sort()).toEqual([path.dirname(w.socketPath), '/tmp'].sort());
      // The password files stay the agent's: the server gets the value, not the file.
      expect(readFileSync(`/proc/${w.pid}/mountinfo`, 'utf8')).not.toContain('/secrets');
    }
  });
});

restCases(() => target, HAPI);
frontDoorCases(() => target, HAPI);

describe('after the cases', () => {
  test('no case named in the unsupported list is missing from the suite', () => {
    expect(staleUnsupported(HAPI)).toEqual([]);
  });

  test('no violation on either tier, no worker restarted or left its serve phase', async () => {
    const c = await agent.client.counters();
    for (const t of c.tiers) {
      expect({ tier: t.tier, violations: Object.entries(t.syscalls).filter(([, v]) => v.violations > 0), egressDenied: t.egressDenied }).toEqual({ tier: t.tier, violations: [], egressDenied: 0 });
    }
    expect(c.tiers.find((t) => t.tier === 'read')!.egressAllowed).toBeGreaterThan(0);
    expect(changes).toEqual([]);
    expect((await agent.client.workers()).map((w) => [w.tier, w.restarts])).toEqual(TIERS.map((t) => [t, 0]));
  });
});

describe('PostgreSQL goes away under HAPI', () => {
  test("HAPI's errors pass as 5xx OperationOutcomes, nothing hangs, and both tiers answer again once it is back", async () => {
    const { json: p } = await target.req('POST', '/Patient', patient());
    world.postgres('stop');
    try {
      const read = await target.req('GET', `/Patient?_id=${p.id}`);
      expect(read.status).toBeGreaterThanOrEqual(500);
      expect(read.json?.resourceType).toBe('OperationOutcome');
      const write = await target.req('POST', '/Patient', patient());
      expect(write.status).toBeGreaterThanOrEqual(500);
      expect(write.json?.resourceType).toBe('OperationOutcome');
    } finally {
      world.postgres('start');
    }
    await poll('both tiers to answer again', async () => (await target.req('GET', `/Patient?_id=${p.id}`)).status === 200 && (await target.req('POST', '/Patient', patient())).status === 201, {
      timeoutMs: 120_000,
      intervalMs: 1000,
    });
    const again = await target.req('GET', `/Patient/${p.id}`);
    expectStatus(again, 200);
  }, 180_000);
});

describe("the attack battery inside a HAPI tier's confinement", () => {
  const exec = (tier: string, extra: string[] = []): string[] => [
    '--tier',
    tier,
    '--policy',
    world.policyFile,
    '--profiles',
    HAPI_PROFILES,
    '--state-dir',
    path.join(dir, 'exec-state'),
    ...extra,
    '--',
  ];
  const boot = (): string[] => [
    `read=${path.join(world.state, 'secrets', 'fhir_write.password')}`,
    `open-wronly=${owned}`,
    `create=${path.join(world.state, 'app', 'dropped')}`,
    `connect=${world.port}`,
  ];

  // A file the tier's identity owns, mounted into its root: only the read-only mount stands in the way.
  const owned = '/tmp/fg-hapi-owned';
  test.each(TIERS)('boot phase, tier %s: the database is the one address it may connect to; its root is read-only; no secret file is there', async (tier) => {
    const ids = resolveIdentities({}, false);
    const who = tier === 'read' ? ids.reader : ids.writer;
    writeFileSync(owned, 'x');
    chownSync(owned, who.uid, who.gid);
    const r = await runExec([...exec(tier, ['--ro', owned]), attack, ...boot()]);
    expect(r.stderr).not.toMatch(/cannot/);
    expect(outcomes(r.stdout)).toEqual({
      read: 'ENOENT', // the password files are not in its root
      'open-wronly': 'EROFS', // its own file, mounted read-only
      create: 'EACCES', // beside its jar: a directory of the read-only root, root's
      connect: 'ok', // PostgreSQL
    });
    expect(outcomes((await runExec([...exec(tier), attack, 'connect=1'])).stdout)).toEqual({ connect: 'EPERM' });
  });

  test.each([
    ['ptrace', 'ptrace'],
    ['mount', 'mount'],
    ['unshare', 'unshare'],
    ['setns', 'setns'],
    ['bpf', 'bpf'],
    ['init_module', 'init_module'],
    ['fork', 'clone'],
  ])('boot phase: %s kills the process at once (its seccomp profile), and the kernel log names %s', async (step, syscall) => {
    const report = path.join(dir, `report-boot-${step}.json`);
    const r = await runExec([...exec('read', ['--report', report]), attack, step]);
    expect({ code: r.code, out: outcomes(r.stdout)[step] }).toEqual({ code: SIGSYS_EXIT, out: undefined });
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(await seccompKills(rep.pid)).toEqual([syscall]);
  });

  test.each([
    ['read', 'exec of any program', 'exec-sh', 'execve'],
    ['read', 'a write open', 'open-wronly=/tmp/x', 'openat'],
    ['write', 'exec of any program', 'exec-sh', 'execve'],
  ])('serve phase, tier %s: %s is killed by the eBPF policy and counted', async (tier, _what, step, syscall) => {
    const report = path.join(dir, `report-${tier}-${syscall}.json`);
    const r = await runExec([...exec(tier, ['--report', report]), attack, '--wait', step], { serveWhenWaiting: true });
    expect(r.code).toBe(137);
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep.counters.policy).toMatchObject({ action: 'enforce', phase: 'serve' });
    expect(rep.counters.syscalls[syscall].violations).toBeGreaterThan(0);
  });
});

describe('supply chain', () => {
  test("a tampered jar is refused before start: the reason on /workers, /enforcement, metrics and the proxy's 503; the signed jar starts again", async () => {
    const good = readFileSync(world.jar);
    const [read] = (await agent.client.workers()).filter((w) => w.tier === 'read');
    // A copy with one byte more at its end: still a zip, a different jar.
    writeFileSync(`${world.jar}.tampered`, Buffer.concat([good, Buffer.from([0])]));
    world.installJar(`${world.jar}.tampered`);
    process.kill(read.pid!, 'SIGKILL');
    const refused = await waitWorkers(agent.client, (ws) => ws.some((w) => w.tier === 'read' && w.state === 'refused'), 120_000, agent.log);
    expect(refused.find((w) => w.tier === 'read')!.refusal).toMatchObject({ reason: 'subject', check: 'trust' });
    const res = await send(new URL(fhirUrl).origin, 'GET', '/fhir/Patient?_count=1');
    expect(res.status).toBe(503);
    expectOutcome({ status: res.status, headers: res.headers, text: res.text, json: res.json }, 503, /tier 'read' is unavailable: the agent refused to start its workers/);
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/fhirguard_worker_start_refusals_total\{[^}]*tier="read"[^}]*reason="subject"[^}]*\} [1-9]/);
    // The signed jar back: the next check admits it.
    writeFileSync(`${world.jar}.good`, good);
    world.installJar(`${world.jar}.good`);
    await servingWorkers();
    // The proxy routes to it once its own check of the new member passed.
    await poll('the read tier to answer through the proxy again', async () => (await target.req('GET', '/Patient?_count=1')).status === 200, { timeoutMs: 60_000, intervalMs: 500 });
    expectStatus(await target.req('GET', '/Patient?_count=1'), 200);
  }, 600_000);

  test('fhirguard rollout replaces the write tier (new profiles, signed) under load: no request fails, no write is lost or applied twice', async () => {
    // The same profiles in a new directory with new statements: what an operator ships after recording again.
    const next = path.join(dir, 'profiles-next');
    cpSync(HAPI_PROFILES, next, { recursive: true });
    sign(next);
    // underLoad checks the workload: no failed request, every acknowledged write readable, none applied twice.
    const since = agent.log().length;
    // What the agent said meanwhile, when something failed: which worker ended, and why.
    // Asynchronous: the load goes on in this process while the rollout runs.
    const { result: out, workload } = await underLoad(
      fhirUrl,
      3,
      async () =>
        (
          await execFileAsync(
            FHIRGUARD,
            ['rollout', '--state-dir', agent.stateDir, '--tier', 'write', '--profile', next, '--attestations', path.join(dir, 'attestations'), '--ready-timeout', '300s'],
            {
              encoding: 'utf8',
              timeout: 600_000,
            },
          )
        ).stdout,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\nthe agent meanwhile:\n${agent
          .log()
          .slice(since)
          .split('\n')
          .filter((l) => /"level":(40|50)/.test(l) && /"worker":/.test(l) && !l.includes('"reqId"'))
          .join('\n')
          .slice(-4000)}`,
      );
    });
    expect(out).toMatch(/write/);
    expect(workload.done.create).toBeGreaterThan(0);
    const e = await agent.client.enforcement();
    expect(e.tiers.find((t) => t.tier === 'write')!.profile?.seccompFile).toBe(path.join(next, 'seccomp', 'write.json'));
  }, 700_000);
});
