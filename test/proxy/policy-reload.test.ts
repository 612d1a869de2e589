// A changed policy put in force while the real proxy serves: checked first (a policy with
// problems, or one that changes the tiers, is refused and the old one stays), then swapped in
// one step. Under load, through POST /reload, `fhirguard reload` and SIGHUP: no request fails,
// every request is decided by exactly one of the two policies (the audit trail names the
// policy, by digest, of each), requests that start after a reload answered get the new one,
// and a request in flight finishes under the policy it started with.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { closeClients, send } from '../helpers/http-client';
import { scrape, scrapeUntil, value } from '../helpers/metrics-text';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { REPO_ROOT } from '../helpers/worker-process';
import { poll } from '../helpers/poll';
import { requestIdOf, trailEvents } from '../audit/trail-helpers';

let dir: string;
let up: RecordingUpstream;
let proxy: ProxyProcess;

/** Observation reads: allowed by A, denied by B; Patient reads allowed by both. */
const policyOf = (observations: boolean, timeoutMs = 30_000): string =>
  stringify({
    tiers: [{ name: 'all', upstreams: [up.url], timeoutMs }],
    rules: [
      ...(observations ? [] : [{ resources: ['Observation'], interactions: ['read'], deny: true }]),
      { resources: ['Patient', 'Observation'], interactions: ['read', 'search-type'], tier: 'all' },
    ],
  });
const digest = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

let A: string;
let B: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-policy-reload-'));
  up = await startRecordingUpstream({ name: 'up' });
  A = policyOf(true);
  B = policyOf(false);
  proxy = await startProxy({ dir, policy: A, args: ['--audit-dir', path.join(dir, 'trail')] });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function postReload(): Promise<{ status: number; json: { result: string; policy: { digest: string }; error?: string } }> {
  const res = await fetch(`${proxy.adminUrl}/reload`, { method: 'POST' });
  return { status: res.status, json: (await res.json()) as never };
}

/** `fhirguard reload` against the proxy's admin listener; never synchronous: the upstream it waits on lives in this process. */
function reloadCli(): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const admin = proxy.adminUrl.replace(/^http:\/\//, '');
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'bin', 'fhirguard'), 'reload', '--admin', admin], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

async function inForce(): Promise<string[]> {
  const { samples } = await scrape(proxy.adminUrl);
  return samples.filter((s) => s.name === 'fhirguard_policy_info' && s.value === 1).map((s) => s.labels.digest);
}

async function expectDecidedBy(which: 'A' | 'B'): Promise<void> {
  const r = await send(proxy.origin, 'GET', '/fhir/Observation/1');
  expect(r.status).toBe(which === 'A' ? 200 : 403);
}

describe('putting a policy in force', () => {
  test('at start the metrics and the log name the policy in force by digest', async () => {
    expect(await inForce()).toEqual([digest(A)]);
    expect(proxy.logs().some((l) => l.msg === 'policy in force' && l.digest === digest(A))).toBe(true);
  });

  test('POST /reload of an unchanged file answers unchanged and changes nothing', async () => {
    const r = await postReload();
    expect(r).toEqual({ status: 200, json: { result: 'unchanged', policy: { file: proxy.policyFile, digest: digest(A) } } });
    await expectDecidedBy('A');
  });

  test('a policy with problems is refused with file:line:col, and the old one stays in force', async () => {
    const upstreamBefore = up.traffic().length;
    writeFileSync(proxy.policyFile, `${A}\nextra: [\n`);
    const cli = await reloadCli();
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain('policy rejected');
    expect(cli.stderr).toMatch(new RegExp(`${path.basename(proxy.policyFile).replace(/\./g, '\\.')}:\\d+:\\d+`));
    expect(cli.stderr).toContain(`still in force: ${digest(A)}`);
    expect(await inForce()).toEqual([digest(A)]);
    await expectDecidedBy('A');
    expect(up.traffic().length).toBe(upstreamBefore + 1);
    const { samples } = await scrape(proxy.adminUrl);
    expect(value(samples, 'fhirguard_policy_reloads_total', { result: 'refused' })).toBe(1);
    writeFileSync(proxy.policyFile, A);
  });

  test('a policy that changes the tiers is refused, naming each change', async () => {
    writeFileSync(proxy.policyFile, policyOf(false, 5000));
    const r = await postReload();
    expect(r.status).toBe(422);
    expect(r.json.result).toBe('refused');
    expect(r.json.error).toContain("tier 'all': timeoutMs changes from 30000 to 5000");
    expect(r.json.policy.digest).toBe(digest(A));
    await expectDecidedBy('A');
    writeFileSync(proxy.policyFile, A);
  });

  test('a request in flight finishes under the policy it started with; the next gets the new one', async () => {
    up.setBehaviour({ kind: 'slow', ms: 1500 });
    try {
      const inFlight = send(proxy.origin, 'GET', '/fhir/Observation/slow', { fresh: true });
      await up.waitFor((r) => r.path.endsWith('/Observation/slow'));
      writeFileSync(proxy.policyFile, B);
      expect((await postReload()).json.result).toBe('applied');
      up.setBehaviour({ kind: 'normal' });
      expect((await inFlight).status).toBe(200);
      await expectDecidedBy('B');
    } finally {
      up.setBehaviour({ kind: 'normal' });
    }
    writeFileSync(proxy.policyFile, A);
    expect((await postReload()).json.result).toBe('applied');
    await expectDecidedBy('A');
  });
});

describe('reloads under load', () => {
  test('0 failed requests, each decided by exactly one policy, the new one from the moment a reload answers', async () => {
    // What a request may be answered, given the policy settled when it started ('either' while a reload runs).
    let settled = 'A' as 'A' | 'B' | 'either';
    // Counts reloads begun: a request that saw none begin between its start and its answer was decided by `settled`.
    let swaps = 0;
    const sent: { id: string; status: number; startedUnder: 'A' | 'B' | 'either' }[] = [];
    const failures: string[] = [];
    let running = true;
    const client = async (n: number): Promise<void> => {
      for (let k = 0; running; k++) {
        const startedUnder = settled;
        const startedIn = swaps;
        try {
          // Every third request on a new connection: reloads must not disturb connecting clients either.
          const r = await send(proxy.origin, 'GET', `/fhir/Observation/${n}-${k}`, { fresh: k % 3 === 0 });
          if (r.status !== 200 && r.status !== 403) failures.push(`${r.status} ${r.text.slice(0, 200)}`);
          // Decided while a reload ran (it began while the request was on its way): either policy.
          sent.push({ id: String(r.headers['x-request-id']), status: r.status, startedUnder: swaps === startedIn ? startedUnder : 'either' });
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const clients = Array.from({ length: 6 }, (_, n) => client(n));

    const waitForRequests = async (more: number): Promise<void> => {
      const target = sent.length + more;
      while (sent.length < target && failures.length === 0) await new Promise((r) => setTimeout(r, 20));
    };
    const swap = async (to: 'A' | 'B', how: 'post' | 'cli' | 'signal'): Promise<void> => {
      settled = 'either';
      swaps++;
      writeFileSync(proxy.policyFile, to === 'A' ? A : B);
      if (how === 'post') expect((await postReload()).json.result).toBe('applied');
      else if (how === 'cli') expect((await reloadCli()).status).toBe(0);
      else {
        process.kill(proxy.pid, 'SIGHUP');
        const want = digest(to === 'A' ? A : B);
        await scrapeUntil(proxy.adminUrl, (s) => s.some((x) => x.name === 'fhirguard_policy_info' && x.value === 1 && x.labels.digest === want), 30_000);
      }
      settled = to;
    };

    await waitForRequests(100);
    await swap('B', 'post');
    await waitForRequests(100);
    await swap('A', 'signal');
    await waitForRequests(100);
    await swap('B', 'cli');
    await waitForRequests(100);
    await swap('A', 'post');
    await waitForRequests(100);
    running = false;
    await Promise.all(clients);

    expect(failures).toEqual([]);
    expect(sent.length).toBeGreaterThanOrEqual(500);
    const statusOf = { A: 200, B: 403 };
    const misdecided = sent.filter((s) => s.startedUnder !== 'either' && s.status !== statusOf[s.startedUnder]);
    expect(misdecided).toEqual([]);
    // Both policies decided some of the load.
    expect(sent.some((s) => s.status === 200) && sent.some((s) => s.status === 403)).toBe(true);

    // The trail names the one policy each request was decided under, and its answer agrees.
    const byId = new Map(sent.map((s) => [s.id, s]));
    const policies = new Map<string, string[]>();
    const events = await poll('every request of the load in the trail', () => {
      const seen = trailEvents(path.join(dir, 'trail')).filter((e) => byId.has(requestIdOf(e) ?? ''));
      return seen.length === sent.length && seen;
    });
    for (const e of events)
      policies.set(
        requestIdOf(e) ?? '',
        e.agent.flatMap((a) => a.policy ?? []),
      );
    const expected = { 200: [`urn:fhirguard:policy:${digest(A)}`], 403: [`urn:fhirguard:policy:${digest(B)}`] };
    const disagreeing = sent.filter((s) => JSON.stringify(policies.get(s.id)) !== JSON.stringify(expected[s.status as 200 | 403]));
    expect(disagreeing).toEqual([]);

    const { samples } = await scrape(proxy.adminUrl);
    expect(value(samples, 'fhirguard_policy_reloads_total', { result: 'applied' })).toBe(6);
  }, 240_000);
});
