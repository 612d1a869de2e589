// Sign and check, as root with everything real: the agent runs every tier's workers from the
// worker image in runc containers and checks each start (restarts too) against statements
// from `fhirguard sign --image`; the proxy routes to them over HTTP. With valid statements
// every tier serves. Then each artifact is tampered with in turn (the seccomp profile, the
// eBPF profile, the policy file, a statement signed by an untrusted key, a statement
// removed, another tier's statement, the image re-tagged to another manifest), the serving
// workers are killed, and their restart is refused: state 'refused' with the reason on the
// agent API, the trust field of GET /enforcement, a metric, a log line naming why, and a 503
// OperationOutcome from the proxy that names the reason while no worker of that tier runs.
// Put back, the tier serves again. Three tiers are tampered with at once, one artifact
// each, so the seven cases take three rounds.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorkerInfo } from '../../src/agent-api/client';
import { buildImage, type BuildResult } from '../../src/image/build';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { FHIRGUARD, REPO, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { OSV_FIXTURES, policyWithFixtureWaivers } from '../helpers/fixture-policy';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';
import { scrapeUntil, value, type Sample } from '../helpers/metrics-text';
import { loadTrustedKeys } from '../../src/trust/keys';
import { poll } from '../helpers/poll';

jest.setTimeout(240_000);

const OSV = OSV_FIXTURES;
const POLICY_TEXT = policyWithFixtureWaivers();
const TIERS = ['read', 'write', 'ops'] as const;
type Tier = (typeof TIERS)[number];

let dir: string;
let profiles: string;
let policyFile: string;
let attestations: string;
let image: BuildResult;
let agent: AgentProcess;
let proxy: ProxyProcess;
let agentArgs: string[];

const statement = (tier: string): string => path.join(attestations, `${tier}.dsse.json`);

function sign(key: string, out: string, tiers: readonly string[] = TIERS): void {
  execFileSync(
    FHIRGUARD,
    ['sign', '--key', key, '--policy', policyFile, '--profiles', profiles, '--image', image.ref, '--advisories', OSV, '--attestations', out, ...tiers.flatMap((t) => ['--tier', t])],
    { stdio: 'pipe' },
  );
}

/** One request per tier through the proxy: read (a search), write (a create), ops ($validate). */
function request(tier: Tier): Promise<Response> {
  const json = { 'content-type': 'application/fhir+json' };
  const patient = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Trusted' }] });
  if (tier === 'read') return fetch(`${proxy.fhirUrl}/Patient?family=Trusted`);
  if (tier === 'write') return fetch(`${proxy.fhirUrl}/Patient`, { method: 'POST', headers: json, body: patient });
  return fetch(`${proxy.fhirUrl}/Patient/$validate`, { method: 'POST', headers: json, body: patient });
}

const byTier = (ws: WorkerInfo[], tier: string): WorkerInfo[] => ws.filter((w) => w.tier === tier);

async function everyTierServes(): Promise<void> {
  await waitWorkers(agent.client, (ws) => ws.length === 4 && allServing(ws), 90_000, agent.log);
  await waitReadyz(proxy, 200, 30_000);
  for (const t of TIERS) expect([t, (await request(t)).status]).toEqual([t, t === 'write' ? 201 : 200]);
}

/** Scrapes the proxy's metrics until `ready` holds (they are read from the agent per scrape). */
async function metricsUntil(ready: (s: Sample[]) => boolean): Promise<Sample[]> {
  return (await scrapeUntil(proxy.adminUrl, ready, 10_000)).samples;
}

/** The proxy's answer for `tier` once it knows the tier's workers were refused. */
async function refusedAnswer(tier: Tier): Promise<{ status: number; body: Record<string, any>; headers: Headers }> {
  let last: { status: number; body: Record<string, any>; headers: Headers } | undefined;
  // At the deadline the last answer is returned: the caller's assertions say what it was.
  return poll(
    `the proxy to know tier ${tier}'s workers were refused`,
    async () => {
      const res = await request(tier);
      last = { status: res.status, body: (await res.json()) as Record<string, any>, headers: res.headers };
      return String(last.body.issue?.[0]?.diagnostics).includes('refused to start its workers') ? last : false;
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  ).catch(() => last!);
}

const REASON_WORDS: Record<string, string> = {
  seccomp: 'the seccomp profile differs from the signed one',
  ebpf: 'the eBPF profile differs from the signed one',
  policy: 'the policy differs from the signed one',
  signature: "the tier's statement is not signed by a trusted key",
  unsigned: 'the tier has no signed statement',
  tier: 'the signed statement is for another tier',
  subject: 'the worker image or install differs from the signed one',
};

/**
 * The tampering is done: every worker of the tiers in `cases` is killed (or, with
 * `started`, the agent was just started), its restart must be refused for the tier's reason,
 * and everything must say so; the other tiers keep serving.
 */
async function expectRefused(cases: Partial<Record<Tier, { reason: string; log: RegExp }>>, started = false): Promise<void> {
  const tiers = Object.keys(cases) as Tier[];
  const before = await agent.client.workers();
  const restartsBefore = new Map(before.map((w) => [w.id, w.restarts]));
  if (!started) for (const w of before.filter((x) => tiers.includes(x.tier as Tier))) process.kill(w.pid!, 'SIGKILL');

  // The agent: refused with the reason, no process; the restart was attempted (restarts + 1).
  const ws = await waitWorkers(
    agent.client,
    (l) => l.length === 4 && l.every((w) => (tiers.includes(w.tier as Tier) ? w.state === 'refused' && w.refusal?.reason === cases[w.tier as Tier]!.reason : w.state === 'serving')),
    60_000,
    agent.log,
  );
  for (const t of tiers) {
    for (const w of byTier(ws, t)) {
      expect({ id: w.id, pid: w.pid, refusal: w.refusal }).toEqual({ id: w.id, pid: null, refusal: { reason: cases[t]!.reason, check: 'trust', message: expect.stringMatching(cases[t]!.log) } });
      if (!started) expect(w.restarts).toBe(restartsBefore.get(w.id)! + 1);
    }
  }
  // GET /enforcement: the tier's trust check refused, counted by reason.
  const e = await agent.client.enforcement();
  for (const t of tiers) {
    const et = e.tiers.find((x) => x.tier === t)!;
    expect({ tier: t, trust: et.trust }).toEqual({ tier: t, trust: expect.objectContaining({ status: 'refused', reason: cases[t]!.reason, message: expect.stringMatching(cases[t]!.log) }) });
    expect(et.startRefusals![cases[t]!.reason]).toBeGreaterThanOrEqual(byTier(ws, t).length);
  }
  // The log line names why.
  for (const t of tiers)
    expect(agent.log()).toMatch(new RegExp(`"tier":"${t}"[^\\n]*"reason":"${cases[t]!.reason}"[^\\n]*worker start REFUSED: ${cases[t]!.log.source.replace(/^\^/, '').replace(/\$$/, '')}`));

  // The proxy: 503 OperationOutcome naming the reason, for the refused tiers only.
  for (const t of TIERS) {
    if (!tiers.includes(t)) {
      expect([t, (await request(t)).status]).toEqual([t, t === 'write' ? 201 : 200]);
      continue;
    }
    const answer = await refusedAnswer(t);
    expect({ tier: t, status: answer.status, type: answer.headers.get('content-type'), retry: answer.headers.get('retry-after') }).toEqual({
      tier: t,
      status: 503,
      type: 'application/fhir+json; charset=utf-8',
      retry: '1',
    });
    expect(answer.body).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'transient',
          diagnostics: `tier '${t}' is unavailable: the agent refused to start its workers: the trust check failed: ${REASON_WORDS[cases[t]!.reason]} (${cases[t]!.reason})`,
        },
      ],
    });
  }
  const ready = (await waitReadyz(proxy, 503, 10_000)) as { tiers: Array<{ tier: string; healthy: number; refused?: string }> };
  for (const t of tiers) expect(ready.tiers.find((x) => x.tier === t)).toMatchObject({ healthy: 0, refused: expect.stringContaining(`(${cases[t]!.reason})`) });

  // The metrics, exported through the proxy like the other enforcement metrics.
  const samples = await metricsUntil((s) => tiers.every((t) => value(s, 'fhirguard_worker_start_refusals_total', { tier: t, reason: cases[t]!.reason }) >= byTier(ws, t).length));
  for (const t of TIERS) {
    const refused = tiers.includes(t);
    expect({
      tier: t,
      trusted: value(samples, 'fhirguard_tier_trusted', { tier: t }),
      refusedWorkers: value(samples, 'fhirguard_workers', { tier: t, state: 'refused' }),
      refusedRequests: value(samples, 'fhirguard_upstream_errors_total', { tier: t, kind: 'refused' }) > 0,
    }).toEqual({ tier: t, trusted: refused ? 0 : 1, refusedWorkers: refused ? byTier(ws, t).length : 0, refusedRequests: refused || expect.any(Boolean) });
    if (refused) expect(value(samples, 'fhirguard_worker_start_refusals_total', { tier: t, reason: cases[t]!.reason })).toBeGreaterThanOrEqual(byTier(ws, t).length);
  }
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('trust');
  image = buildImage({ install: REPO, output: path.join(dir, 'layout'), tag: 'worker', epoch: 1700000000 });
  profiles = path.join(dir, 'profiles');
  for (const kind of ['seccomp', 'ebpf']) cpSync(path.join(REPO, 'profiles', kind), path.join(profiles, kind), { recursive: true });
  policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY_TEXT);
  attestations = path.join(dir, 'attestations');
  for (const name of ['ops-key', 'intruder']) execFileSync(FHIRGUARD, ['keygen', '--out', path.join(dir, 'keys'), '--name', name], { stdio: 'pipe' });
  sign(path.join(dir, 'keys', 'ops-key.key'), attestations);
  agentArgs = ['--policy', policyFile, '--profiles', profiles, '--image', image.ref, '--advisories', OSV, '--trusted-keys', path.join(dir, 'keys', 'ops-key.pub'), '--attestations', attestations];
  agent = await startAgent(dir, agentArgs);
  await waitWorkers(agent.client, (ws) => ws.length === 4 && allServing(ws), 120_000, agent.log);
  proxy = await startProxy({ dir, policy: POLICY_TEXT, args: ['--agent', agent.socketPath] });
  await waitReadyz(proxy, 200, 60_000);
}, 240_000);

afterAll(async () => {
  if (process.env.FHIRGUARD_TRUST_LOG) writeFileSync(process.env.FHIRGUARD_TRUST_LOG, agent?.log() ?? '');
  await proxy?.stop();
  await agent?.stop();
  await stopAllProxies();
  killLeftoverAgents();
  removeDir(dir);
});

test('with valid signed statements every tier serves, and says which key and image it verified', async () => {
  await everyTierServes();
  const [key] = loadTrustedKeys(path.join(dir, 'keys', 'ops-key.pub'));
  const e = await agent.client.enforcement();
  for (const t of TIERS) {
    expect(e.tiers.find((x) => x.tier === t)?.trust).toEqual({
      status: 'verified',
      keyid: key.keyid,
      subject: { kind: 'image', name: image.ref, digest: { sha256: image.digest.replace('sha256:', '') } },
      checkedAt: expect.any(String),
      refusals: {},
    });
  }
  const samples = await metricsUntil((s) => TIERS.every((t) => value(s, 'fhirguard_tier_trusted', { tier: t }) === 1));
  for (const t of TIERS) expect([t, value(samples, 'fhirguard_tier_trusted', { tier: t }), value(samples, 'fhirguard_workers', { tier: t, state: 'refused' })]).toEqual([t, 1, 0]);
  expect(agent.log()).toMatch(/worker starts need a signed statement per tier: 1 trusted key\(s\)/);
  expect(agent.log()).toMatch(/tier read: signed statement verified \(image sha256:[0-9a-f]{12}\)/);
});

test('round 1: an edited seccomp profile (read), an edited eBPF profile (write), a statement signed by an untrusted key (ops): restarts refused', async () => {
  const seccomp = path.join(profiles, 'seccomp', 'read.json');
  const ebpf = path.join(profiles, 'ebpf', 'write.json');
  const saved = [seccomp, ebpf, statement('ops')].map((f) => [f, readFileSync(f)] as const);
  writeFileSync(seccomp, readFileSync(seccomp, 'utf8').replace(/\n$/, ' \n'));
  const e = JSON.parse(readFileSync(ebpf, 'utf8'));
  writeFileSync(ebpf, JSON.stringify({ ...e, serve: [...e.serve, 'execve'] }, null, 2) + '\n');
  sign(path.join(dir, 'keys', 'intruder.key'), attestations, ['ops']);
  await expectRefused({
    read: { reason: 'seccomp', log: /^the seccomp profile seccomp\/read\.json is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}$/ },
    write: { reason: 'ebpf', log: /^the eBPF profile ebpf\/write\.json is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}$/ },
    ops: { reason: 'signature', log: /^\S+\/ops\.dsse\.json: no signature verifies under a trusted key \(1 trusted\)$/ },
  });
  for (const [f, bytes] of saved) writeFileSync(f, bytes);
  await everyTierServes();
});

test("round 2: a statement removed (read), another tier's statement (write), an edited policy file (ops): restarts refused", async () => {
  const saved = [statement('read'), statement('write'), policyFile].map((f) => [f, readFileSync(f)] as const);
  renameSync(statement('read'), `${statement('read')}.removed`);
  copyFileSync(statement('ops'), statement('write'));
  writeFileSync(policyFile, `${POLICY_TEXT}# an edit nobody signed\n`);
  await expectRefused({
    read: { reason: 'unsigned', log: /^tier read is not signed: no \S+\/read\.dsse\.json$/ },
    write: { reason: 'tier', log: /^the statement is for tier ops, not write$/ },
    ops: { reason: 'policy', log: /^the policy file policy\.yaml is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}$/ },
  });
  for (const [f, bytes] of saved) writeFileSync(f, bytes);
  await everyTierServes();
});

test('a policy reload is refused while the statements do not cover it; signed, it is in force and restarts are admitted', async () => {
  const control = path.join(agent.stateDir, 'control', 'agent.sock');
  const reload = (): { status: number | null; out: string } => {
    const r = spawnSync(FHIRGUARD, ['reload', '--control', control], { encoding: 'utf8', timeout: 120_000 });
    return { status: r.status, out: r.stdout + r.stderr };
  };
  const reviewed = `${POLICY_TEXT}# reviewed\n`;
  try {
    writeFileSync(policyFile, reviewed);
    const refused = reload();
    expect(refused.status).toBe(1);
    expect(refused.out).toContain("the tiers' signed statements do not cover the new policy");
    expect(refused.out).toMatch(/the policy file policy\.yaml is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}/);

    sign(path.join(dir, 'keys', 'ops-key.key'), attestations);
    const applied = reload();
    expect(applied).toEqual({ status: 0, out: expect.stringMatching(/^in force: sha256:[0-9a-f]{64} /) });
    // Every worker restarted is admitted under the policy now loaded and its statements.
    const before = await agent.client.workers();
    for (const w of before) process.kill(w.pid!, 'SIGKILL');
    const restarts = new Map(before.map((w) => [w.id, w.restarts]));
    await waitWorkers(agent.client, (ws) => ws.length === 4 && allServing(ws) && ws.every((w) => w.restarts > restarts.get(w.id)!), 90_000, agent.log);
    await everyTierServes();
  } finally {
    writeFileSync(policyFile, POLICY_TEXT);
    sign(path.join(dir, 'keys', 'ops-key.key'), attestations);
    expect(reload().status).toBe(0);
  }
});

test('round 3: the image re-tagged to another manifest: the restarted agent starts no worker, every tier answers 503', async () => {
  expect((await agent.stop()).code).toBe(0);
  const moved = buildImage({ install: REPO, output: path.join(dir, 'layout'), tag: 'worker', epoch: 1700000001 });
  expect(moved.ref).toBe(image.ref);
  expect(moved.digest).not.toBe(image.digest);
  agent = await startAgent(dir, agentArgs);
  const log = new RegExp(
    `^the image ${image.ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is sha256:${moved.digest.slice(7, 19)}, the statement signs sha256:${image.digest.slice(7, 19)} \\(\\S+:worker\\)$`,
  );
  await expectRefused({ read: { reason: 'subject', log }, write: { reason: 'subject', log }, ops: { reason: 'subject', log } }, true);
  // Nothing was unpacked from the image nobody signed.
  expect(agent.log()).not.toMatch(/worker image unpacked/);
  expect(existsSync(path.join(agent.stateDir, 'images', moved.digest.replace(':', '-')))).toBe(false);
  expect(existsSync(path.join(agent.stateDir, 'images', image.digest.replace(':', '-')))).toBe(true);
});
