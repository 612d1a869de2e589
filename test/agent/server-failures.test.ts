// How a tier served by an operator's own server (policy `server:`) fails, with the real agent
// (root), runc, seccomp and eBPF, and small stand-ins for the server so no JVM is needed: one
// that never answers its health check (reported down with the end of its log, restarted with a
// growing backoff, not in a storm) and one its profile kills at boot (the call and the phase
// named on /workers, in the agent's log, the tier's violation counters and the proxy's 503).
// Neither ever reaches the serving state, so no request reaches either.

import { cpSync, chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { buildAttack, removeDir, requireEnforcement, shortTempDir } from '../helpers/confined';
import { HAPI_TEMPLATES } from '../helpers/hapi';
import { send } from '../helpers/http-client';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { poll } from '../helpers/poll';

let dir: string;
let agent: AgentProcess;
let proxy: ProxyProcess;

const POLICY = (attack: string): string => `tiers:
  - name: silent
    server:
      command: [/bin/sh, -c, "echo starting up; echo still not listening on \${socket} >&2; exec sleep 600"]
      readOnly: [/usr/bin/sleep]
      startTimeoutMs: 2000
  - name: doomed
    server:
      command: [${attack}, ptrace]
      startTimeoutMs: 10000
rules:
  - resources: ["*"]
    interactions: [read, search-type]
    tier: silent
  - resources: [Observation]
    interactions: [create]
    tier: doomed
`;

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('server-fail');
  chmodSync(dir, 0o711);
  const attack = buildAttack(dir);
  const policy = POLICY(attack);
  writeFileSync(path.join(dir, 'policy.yaml'), policy);
  // Both tiers under a server template: whatever it does not list kills the process.
  const profiles = path.join(dir, 'profiles');
  for (const [tier, from] of [
    ['silent', 'read'],
    ['doomed', 'write'],
  ]) {
    for (const kind of ['seccomp', 'ebpf']) cpSync(path.join(HAPI_TEMPLATES, kind, `${from}.json`), path.join(profiles, kind, `${tier}.json`));
  }
  agent = await startAgent(dir, ['--policy', path.join(dir, 'policy.yaml'), '--profiles', profiles], {});
  proxy = await startProxy({ dir, policy, args: ['--agent', agent.socketPath] });
}, 120_000);

afterAll(async () => {
  await stopAllProxies();
  if (agent) await agent.stop();
  killLeftoverAgents();
  removeDir(dir);
});

test('a server that never answers its health check: killed after its start timeout, reported with the end of its log, restarted with a growing backoff', async () => {
  const ws = await waitWorkers(agent.client, (w) => w.some((x) => x.tier === 'silent' && (x.lastExit?.logTail?.length ?? 0) > 0), 60_000, agent.log);
  const w = ws.find((x) => x.tier === 'silent')!;
  expect(w.lastExit).toMatchObject({ phase: 'boot', code: 137 });
  // Its stdout and stderr go to one log; the order of the two lines is the shell's.
  expect([...w.lastExit!.logTail!].sort()).toEqual(['starting up', `still not listening on ${w.socketPath}`]);
  expect(agent.log()).toMatch(/worker did not answer GET \/metadata in time, killing it/);
  expect(agent.log()).toContain('still not listening');
  const res = await send(proxy.origin, 'GET', '/fhir/Patient?_count=1');
  expect(res.status).toBe(503);
  expect(res.json.issue[0].diagnostics).toMatch(/^tier 'silent' has no healthy upstream \(worker silent-0 did not start \(status 137\); the agent restarts it\); try again later$/);
  // Starts 2 s each, then 0.2, 0.4, 0.8, 1.6 s... of backoff: a few a minute, not a storm.
  const t0 = Date.now();
  const r0 = w.restarts;
  await new Promise((r) => setTimeout(r, 12_000));
  const r1 = (await agent.client.workers()).find((x) => x.tier === 'silent')!.restarts;
  const perSecond = (r1 - r0) / ((Date.now() - t0) / 1000);
  expect(perSecond).toBeLessThan(0.5);
}, 90_000);

test("a server its profile kills at boot: the call and the phase on /workers, in the agent's log, the tier's violations and the proxy's 503", async () => {
  const ws = await waitWorkers(agent.client, (w) => w.some((x) => x.tier === 'doomed' && (x.lastExit?.violations?.length ?? 0) > 0), 60_000, agent.log);
  const w = ws.find((x) => x.tier === 'doomed')!;
  expect(w.lastExit).toMatchObject({ phase: 'boot', code: 128 + 31, violations: ['ptrace'] });
  expect(agent.log()).toMatch(/worker's profile refused ptrace in its boot phase/);
  const counters = await agent.client.counters();
  expect(counters.tiers.find((t) => t.tier === 'doomed')!.syscalls.ptrace.violations).toBeGreaterThan(0);
  const res = await send(proxy.origin, 'POST', '/fhir/Observation', {
    body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } },
    headers: { 'content-type': 'application/fhir+json' },
  });
  expect(res.status).toBe(503);
  expect(res.json.issue[0].diagnostics).toBe("tier 'doomed' has no healthy upstream (worker doomed-0 was stopped by its profile in its boot phase at ptrace); try again later");
  await poll(
    'the metrics to count the violation',
    async () => /fhirguard_syscall_violations_total\{[^}]*tier="doomed"[^}]*syscall="ptrace"[^}]*\} [1-9]/.test(await (await fetch(`${proxy.adminUrl}/metrics`)).text()),
    { timeoutMs: 20_000 },
  );
}, 90_000);
