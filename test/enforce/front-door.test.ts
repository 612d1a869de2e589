// The front door confined like a worker (src/agent/front-door.ts, root): what the kernel says
// of the proxy process the agent runs, and the attack battery run from inside the front
// door's own confinement (`fhirguard exec --tier proxy`: its container, identity, seccomp
// profile, eBPF policy and egress list) in boot and in serve phase. An attacker who owns the
// proxy can connect to the policy's upstreams and to the workers' sockets, and to nothing
// else; it cannot exec, write a file, open the database, signal the agent or a worker,
// ptrace, mount, unshare, load a BPF program or a module.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { resolveIdentities } from '../../src/enforce/identities';
import { freePort } from '../../src/record/ports';
import { allServing, killLeftoverAgents, startAgent, waitWorkers, type AgentProcess } from '../helpers/agent-process';
import { buildAttack, outcomes, procStatus, removeDir, requireEnforcement, runExec, shortTempDir } from '../helpers/confined';
import { poll } from '../helpers/poll';

/** Every AuditEvent of the trail files in `dir` (none while it does not exist). */
function trailEvents(dir: string): Array<{ entity?: unknown }> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as { entity?: unknown });
}

let dir: string;
let attack: string;
let agent: AgentProcess;
let upstream: net.Server;
let upstreamPort: number;
let other: net.Server;
let otherPort: number;
let policyFile: string;
let fhirUrl: string;
let adminPort: number;

function listen(): Promise<[net.Server, number]> {
  return new Promise((resolve) => {
    const s = net.createServer((c) => c.end());
    s.listen(0, '127.0.0.1', () => resolve([s, (s.address() as net.AddressInfo).port]));
  });
}

async function frontDoorServing(): Promise<{ pid: number; restarts: number }> {
  return poll(
    'the front door to serve',
    async () => {
      const fd = (await agent.client.enforcement()).frontDoor;
      return fd?.state === 'serving' && fd.pid ? { pid: fd.pid, restarts: fd.restarts } : false;
    },
    { timeoutMs: 90_000, intervalMs: 100, detail: () => agent.log().slice(-3000) },
  );
}

beforeAll(async () => {
  await requireEnforcement({ ebpf: true });
  dir = shortTempDir('front-door');
  // The identities pass through the test's directory, as through a state directory.
  chmodSync(dir, 0o711);
  attack = buildAttack(dir);
  [upstream, upstreamPort] = await listen();
  [other, otherPort] = await listen();
  // The shipped tiers, and one more served by a static upstream: the one address the proxy may connect to.
  policyFile = path.join(dir, 'policy.yaml');
  const shipped = readFileSync(path.join(__dirname, '..', '..', 'profiles', 'policy.yaml'), 'utf8');
  const withUpstream = shipped.replace(/^tiers:.*\n/m, `tiers:\n  - name: outside\n    upstreams: ["http://127.0.0.1:${upstreamPort}"]\n    readOnly: true\n`);
  expect(withUpstream).toContain('name: outside');
  writeFileSync(policyFile, withUpstream);
  const listenPort = await freePort();
  adminPort = await freePort();
  fhirUrl = `http://127.0.0.1:${listenPort}/fhir`;
  agent = await startAgent(dir, ['--policy', policyFile, '--front-door', JSON.stringify(['--listen', `127.0.0.1:${listenPort}`, '--admin', `127.0.0.1:${adminPort}`])]);
  await waitWorkers(agent.client, allServing, 120_000, agent.log);
  await frontDoorServing();
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  killLeftoverAgents();
  upstream?.close();
  other?.close();
  removeDir(dir);
});

describe('the proxy the agent runs', () => {
  test('is its own identity, without capabilities or new privileges, under seccomp, in its own cgroup and namespaces but the network', async () => {
    const { pid } = await frontDoorServing();
    const s = procStatus(pid);
    const ids = resolveIdentities({}, false);
    expect(s.Uid.split(/\s+/)).toEqual(Array(4).fill(String(ids.proxy.uid)));
    expect(s.Gid.split(/\s+/)).toEqual(Array(4).fill(String(ids.proxy.gid)));
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) expect(s[set]).toBe('0000000000000000');
    expect(s.NoNewPrivs).toBe('1');
    expect(s.Seccomp).toBe('2');
    for (const ns of ['pid', 'mnt', 'ipc', 'uts']) expect({ ns, own: readlinkSync(`/proc/${pid}/ns/${ns}`) !== readlinkSync(`/proc/self/ns/${ns}`) }).toEqual({ ns, own: true });
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(readlinkSync('/proc/self/ns/net'));
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toMatch(/^0::\/fhirguard\/proxy\/proxy-\d+-[0-9a-f]{6}$/m);
  });

  test('sees no database and nothing writable: every mount of its root is read-only', async () => {
    const { pid } = await frontDoorServing();
    const root = `/proc/${pid}/root`;
    expect(existsSync(agent.db)).toBe(true);
    expect(existsSync(`${root}${agent.db}`)).toBe(false);
    expect(existsSync(`${root}${path.dirname(agent.db)}`)).toBe(false);
    expect(existsSync(`${root}${agent.socketPath}`)).toBe(true);
    const writable = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
      .filter((f) => f[5].split(',').includes('rw') && !['/proc', '/dev'].some((p) => f[4] === p || f[4].startsWith(`${p}/`)))
      .map((f) => f[4]);
    expect(writable).toEqual([]);
  });

  test('serves FHIR in its serve phase, counted as tier proxy with no violation', async () => {
    const res = await fetch(`${fhirUrl}/metadata`);
    expect(res.status).toBe(200);
    const e = await agent.client.enforcement();
    expect(e.frontDoor).toMatchObject({ state: 'serving', confinement: 'container', mode: 'enforce', profile: { tier: 'proxy' } });
    const c = (await agent.client.counters()).tiers.find((t) => t.tier === 'proxy')!;
    expect(c.syscalls.accept4?.calls).toBeGreaterThan(0);
    expect(Object.entries(c.syscalls).filter(([, v]) => v.violations > 0)).toEqual([]);
  });

  test('its requests are audited: the agent keeps the trail the confined proxy cannot write', async () => {
    const res = await fetch(`${fhirUrl}/Patient/audited-here`);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const trail = path.join(agent.stateDir, 'audit');
    const event = await poll("the AuditEvent of the request in the agent's trail", () => trailEvents(trail).find((e) => JSON.stringify(e).includes(String(requestId))), {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    expect(JSON.stringify(event.entity)).toContain('Patient/audited-here');
    // The proxy's own root stays read-only: the trail is the agent's.
    expect(statSync(trail).uid).toBe(0);
  });

  test('killed, it is restarted by the agent and serves again', async () => {
    const before = await frontDoorServing();
    process.kill(before.pid, 'SIGKILL');
    const after = await poll(
      'the front door to be restarted',
      async () => {
        const now = await frontDoorServing();
        return now.pid !== before.pid && now.restarts !== before.restarts ? now : false;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    expect(after.restarts).toBe(before.restarts + 1);
    expect((await fetch(`${fhirUrl}/metadata`)).status).toBe(200);
  }, 90_000);

  test('takes a changed policy through the agent: checked, handed to the confined proxy, in force for new requests', async () => {
    const original = readFileSync(policyFile, 'utf8');
    const reload = (): { status: number | null; out: string } => {
      const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'fhirguard'), 'reload', '--control', path.join(agent.stateDir, 'control', 'agent.sock'), '--json'], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      return { status: r.status, out: r.stdout + r.stderr };
    };
    const digest = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;
    const inForce = async (): Promise<string> => /fhirguard_policy_info\{digest="([^"]+)"\} 1/.exec(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text())?.[1] ?? '';
    try {
      expect((await fetch(`${fhirUrl}/Observation`)).status).toBe(200);
      expect(await inForce()).toBe(digest(original));

      // A rule more: searching Observations is denied from now on.
      const denying = original.replace(/^rules:.*\n/m, (line) => `${line}  - { resources: [Observation], interactions: [search-type], deny: true }\n`);
      writeFileSync(policyFile, denying);
      const applied = reload();
      expect(applied.status).toBe(0);
      expect(JSON.parse(applied.out.split('\n')[0])).toMatchObject({ result: 'applied', policy: { digest: digest(denying) } });
      expect(await inForce()).toBe(digest(denying));
      expect((await fetch(`${fhirUrl}/Observation`)).status).toBe(403);
      // The confined proxy read the agent's copy; the agent routes restarts by the same policy.
      expect(readFileSync(path.join(agent.stateDir, 'proxy', path.basename(policyFile)), 'utf8')).toBe(denying);

      // Moving a tier's upstream is not a reload: the proxy's egress and pools were made from it.
      writeFileSync(policyFile, denying.replace(`127.0.0.1:${upstreamPort}`, `127.0.0.1:${otherPort}`));
      const refused = reload();
      expect(refused.status).toBe(1);
      expect(refused.out).toContain("tier 'outside': upstreams changes");
      expect(await inForce()).toBe(digest(denying));
      expect(readFileSync(path.join(agent.stateDir, 'proxy', path.basename(policyFile)), 'utf8')).toBe(denying);
      expect((await fetch(`${fhirUrl}/Observation`)).status).toBe(403);
    } finally {
      writeFileSync(policyFile, original);
      expect(reload().status).toBe(0);
    }
    expect(await inForce()).toBe(digest(original));
    expect((await fetch(`${fhirUrl}/Observation`)).status).toBe(200);
  }, 240_000);
});

describe("the attack battery inside the front door's confinement", () => {
  const execArgs = (extra: string[] = []): string[] => ['--tier', 'proxy', '--policy', policyFile, '--state-dir', path.join(dir, 'exec-state'), '--db', agent.db, ...extra, '--'];

  test('boot phase: seccomp, mounts, namespaces, identity and egress refuse everything but its upstream', async () => {
    const install = path.join(__dirname, '..', '..', 'package.json');
    // A file the proxy's identity may write, mounted into its root: only the read-only mount stands in the way.
    const own = path.join(dir, 'owned-by-proxy');
    writeFileSync(own, 'x');
    const ids = resolveIdentities({}, false);
    chownSync(own, ids.proxy.uid, ids.proxy.gid);
    const r = await runExec([
      ...execArgs(['--ro', own]),
      attack,
      `read=${agent.db}`,
      `open-rdwr=${install}`,
      `open-wronly=${own}`,
      `create=${path.join(dir, 'created-by-proxy')}`,
      `unlink=${install}`,
      `rename=${install}`,
      `connect=${otherPort}`,
      `kill=${agent.proc.pid}`,
      'mount',
      'unshare',
      'setns',
      'bpf',
      'init_module',
      'proc-sys',
      'fork',
      'exec-sh',
      'ptrace',
    ]);
    expect(r.stderr).not.toMatch(/cannot/);
    expect(r.code).toBe(0);
    expect(outcomes(r.stdout)).toEqual({
      read: 'ENOENT', // the data directory is not in its root
      'open-rdwr': 'EPERM',
      'open-wronly': 'EROFS', // runc's exec-FIFO shape gets past seccomp; the mount refuses it
      create: 'EPERM',
      unlink: 'EPERM',
      rename: 'EPERM',
      connect: 'EPERM', // not an upstream of the policy: the egress allow-list
      kill: 'EPERM',
      mount: 'EPERM',
      unshare: 'EPERM',
      setns: 'EPERM',
      bpf: 'EPERM',
      init_module: 'EPERM',
      'proc-sys': 'EPERM',
      fork: 'EPERM',
      'exec-sh': 'ENOENT',
      ptrace: 'EPERM',
    });
  });

  test("the policy's upstream is the one address it may connect to", async () => {
    const r = await runExec([...execArgs(), attack, `connect=${upstreamPort}`]);
    expect(outcomes(r.stdout)).toEqual({ connect: 'ok' });
  });

  test.each([
    ['exec of any program', 'exec-sh', 'execve'],
    ['a write open of the shape seccomp lets through', `open-wronly=${'/'}`, 'openat'],
  ])('serve phase: %s is killed by the eBPF policy and counted', async (_what, step, syscall) => {
    const report = path.join(dir, `report-${syscall}.json`);
    const r = await runExec([...execArgs(['--report', report]), attack, '--wait', step], { serveWhenWaiting: true });
    expect(r.code).toBe(137);
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep.counters.policy).toMatchObject({ action: 'enforce', phase: 'serve', noWriteOpens: true });
    expect(rep.counters.syscalls[syscall].violations).toBeGreaterThanOrEqual(1);
  });

  test('serve phase: a connect outside the allow-list is refused and counted', async () => {
    const report = path.join(dir, 'report-egress.json');
    const r = await runExec([...execArgs(['--report', report]), attack, '--wait', `connect=${otherPort}`], { serveWhenWaiting: true });
    expect(outcomes(r.stdout)).toEqual({ connect: 'EPERM' });
    const rep = JSON.parse(readFileSync(report, 'utf8'));
    expect(rep.counters.egressDenied).toBeGreaterThanOrEqual(1);
  });
});

test('the attack program is the one built here (a stale binary would test nothing)', () => {
  expect(execFileSync(attack, ['kill=999999'], { encoding: 'utf8' })).toMatch(/^kill /);
});
