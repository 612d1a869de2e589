// `fhirguard agent --adopt-pods` (node mode) as root against the real kernel: the compiled
// agent, fhirguard's eBPF programs in a private pin directory, a kubelet-like cgroup v2 tree
// (systemd driver, containerd names) with real processes in its container cgroups, and its
// admin listener scraped over HTTP. The pods come from test/helpers/kube-api-server.ts, a
// loopback HTTPS server speaking the pods list/watch API: Kubernetes itself cannot run on this
// machine, and that server is the only stand-in here.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Pod } from '../../src/agent/kube/pods';
import { BpfEnforcer, probeKernel, type Phase } from '../../src/enforce/bpf';
import { loadEbpfProfile } from '../../src/enforce/ebpf-profile';
import { ProxyMetrics } from '../../src/metrics/registry';
import { CGROUP2, Child, TEST_CHILD, killAll, listenLoopback, removeCgroup } from '../enforce/bpf-helpers';
import { dashboardQueries, loadDashboard, metricNames } from '../grafana/dashboard';
import { FHIRGUARD, REPO } from '../helpers/confined';
import { FakeKubeApi } from '../helpers/kube-api-server';
import { poll } from '../helpers/poll';

const tag = randomBytes(4).toString('hex');
const testRoot = path.join(CGROUP2, `fhirguard-test-${tag}`);
const kubepods = path.join(testRoot, 'kubepods.slice');
const pinDir = `/sys/fs/bpf/fhirguard-test-${tag}`;
const bpf = new BpfEnforcer({ pinDir, cgroupRoot: kubepods });
const tmp = mkdtempSync(path.join(tmpdir(), 'fg-kube-'));
const NS = 'fhirguard';
const NODE = 'node-a';
const LABEL = 'fhirguard.io/tier';
const made: string[] = [];
let api: FakeKubeApi;
let agent: { proc: ChildProcess; lines: Record<string, unknown>[]; exited: Promise<number | null> } | null = null;
let adminUrl = '';

/** RFC 3339 at second resolution, as the API server writes times. */
const at = (msAgo: number): string => new Date(Date.now() - msAgo).toISOString().replace(/\.\d+Z$/, 'Z');
const containerId = (): string => randomBytes(32).toString('hex');

interface PodShape {
  uid: string;
  name: string;
  tier: string;
  worker: string;
  ready: boolean;
  startedAt: string;
  readySince?: string;
  restarts?: number;
  node?: string;
}

function pod(s: PodShape): Pod {
  const running = (id: string) => ({ containerID: `containerd://${id}`, ready: s.ready, state: { running: { startedAt: s.startedAt } } });
  return {
    metadata: { name: s.name, namespace: NS, uid: s.uid, labels: { 'app.kubernetes.io/component': 'worker', [LABEL]: s.tier } },
    spec: {
      nodeName: s.node ?? NODE,
      securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'worker',
          securityContext: { readOnlyRootFilesystem: true, seccompProfile: { type: 'Localhost', localhostProfile: `operator/${NS}/fhirguard-${s.tier}.json` } },
          volumeMounts: [{ name: 'data', readOnly: true }],
        },
        { name: 'bridge', securityContext: { readOnlyRootFilesystem: true } },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'fhirguard-data', readOnly: true } }],
    },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: s.ready ? 'True' : 'False', lastTransitionTime: s.readySince ?? s.startedAt }],
      containerStatuses: [
        { name: 'worker', restartCount: s.restarts ?? 0, ...running(s.worker) },
        { name: 'bridge', restartCount: 0, ...running(containerId()) },
      ],
    },
  };
}

/** The container's cgroup where a systemd-driven kubelet with containerd puts it. */
function containerCgroup(uid: string, id: string): string {
  const dir = path.join(kubepods, 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice`, `cri-containerd-${id}.scope`);
  mkdirSync(dir, { recursive: true });
  for (let d = dir; d.startsWith(testRoot); d = path.dirname(d)) if (!made.includes(d)) made.push(d);
  return dir;
}

/** Whether a cgroup id has a policy (its directory may be gone). */
async function registered(cgid: string): Promise<boolean> {
  return (await bpf.counters()).cgroups.some((c) => c.cgid === cgid);
}

async function phaseOf(dir: string): Promise<Phase | null> {
  const c = await bpf.counters(dir).catch(() => null);
  return c?.cgroups[0]?.policy?.phase ?? null;
}

async function eventually<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const found = await poll(
    what,
    async () => {
      const v = await probe();
      return ok(v) ? { v } : false;
    },
    { timeoutMs: ms, intervalMs: 100, detail: () => agentLog().slice(-4000) },
  );
  return found.v;
}

const agentLog = (): string => (agent?.lines ?? []).map((l) => JSON.stringify(l)).join('\n');
const logged = (re: RegExp): boolean => (agent?.lines ?? []).some((l) => re.test(String(l.msg)));

let lastScrape = 0;

/** One series of the agent's /metrics: its value (0 when absent). The metrics read the agent's
 * reports once per 250 ms of scrapes: each call here waits that out, so it sees the present. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  await new Promise((r) => setTimeout(r, Math.max(0, lastScrape + 300 - Date.now())));
  lastScrape = Date.now();
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

function startAgent(): Promise<void> {
  const proc = spawn(
    FHIRGUARD,
    ['agent', '--adopt-pods', LABEL, '--admin', '127.0.0.1:0', '--policy', path.join(tmp, 'policy.yaml'), '--profiles', path.join(REPO, 'profiles')].concat([
      '--pod-cgroups',
      kubepods,
      '--kube-service-account',
      api.serviceAccountDir,
    ]),
    { env: { ...process.env, ...api.env, FHIRGUARD_NODE_NAME: NODE, FHIRGUARD_BPF_PIN_DIR: pinDir }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  agent = { proc, lines, exited };
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      const entry = JSON.parse(l) as Record<string, unknown>;
      lines.push(entry);
      if (typeof entry.admin === 'string' && /node mode/.test(String(entry.msg))) {
        adminUrl = `http://${entry.admin}`;
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`the agent exited (${code}) before it was ready:\n${agentLog()}`)));
  });
}

beforeAll(async () => {
  if (process.geteuid?.() !== 0) throw new Error('the node agent tests need root (euid 0): they load eBPF programs and create cgroups');
  const k = await probeKernel({ loader: bpf.loader });
  if (!k.syscallPolicy.available) throw new Error(`eBPF syscall policy not available: ${k.syscallPolicy.reason}`);
  if (!existsSync(TEST_CHILD)) throw new Error(`${TEST_CHILD} not built (make -C bpf)`);
  if (!existsSync(path.join(REPO, 'dist', 'src', 'agent', 'kube', 'node-agent.js'))) throw new Error('dist/ lacks the node agent: npm run build first');
  if (!CGROUP2) throw new Error('no cgroup v2 hierarchy is mounted');
  mkdirSync(kubepods, { recursive: true });
  made.push(testRoot, kubepods);
  api = await FakeKubeApi.start(tmp);
  // The Kubernetes tiers: served by Services (upstreams), read enforced, write audited, and one
  // tier that has no profiles in profiles/.
  const upstream = (t: string): string => `["http://fhirguard-worker-${t}.${NS}.svc:8080"]`;
  writeFileSync(
    path.join(tmp, 'policy.yaml'),
    [
      'tiers:',
      `  - { name: read, upstreams: ${upstream('read')} }`,
      `  - { name: write, upstreams: ${upstream('write')}, mode: audit }`,
      `  - { name: reports, upstreams: ${upstream('reports')} }`,
      'rules:',
      '  - { resources: ["*"], interactions: [read, search-type], tier: read }',
      '  - { resources: ["*"], interactions: [create, update], tier: write }',
      '  - { resources: ["*"], interactions: [history-type], tier: reports }',
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  if (agent && agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
  await killAll();
  await api?.close();
  await bpf.unload().catch(() => undefined);
  for (const dir of [...made].sort((a, b) => b.length - a.length)) await removeCgroup(dir);
  rmSync(tmp, { recursive: true, force: true });
  expect(existsSync(pinDir)).toBe(false);
  expect(existsSync(testRoot)).toBe(false);
});

describe('fhirguard agent --adopt-pods', () => {
  const read = { uid: randomUUID(), name: 'fhirguard-worker-read-7d9f-a', tier: 'read', worker: containerId(), ready: false, startedAt: at(3000) };
  const write = { uid: randomUUID(), name: 'fhirguard-worker-write-5c4b-a', tier: 'write', worker: containerId(), ready: true, startedAt: at(4000), readySince: at(1000) };
  let readDir = '';
  let readChild: Child;
  let writeChild: Child;

  it('adopts a labelled pod of its node in boot phase, leaves its other containers alone, drops what is gone', async () => {
    readDir = containerCgroup(read.uid, read.worker);
    const bridgeDir = containerCgroup(read.uid, 'b'.repeat(64));
    readChild = await Child.start(readDir);
    // Another node's pod is not this agent's (the field selector keeps it out).
    const elsewhere = { ...read, uid: randomUUID(), name: 'elsewhere', worker: containerId(), node: 'node-b' };
    const elsewhereDir = containerCgroup(elsewhere.uid, elsewhere.worker);
    api.put(pod(read));
    api.put(pod(elsewhere));
    // What an agent that stopped left pinned: a cgroup that is gone since, one that still exists.
    await bpf.load();
    const [gone, kept] = [path.join(kubepods, 'gone'), path.join(kubepods, 'kept')];
    for (const d of [gone, kept]) mkdirSync(d);
    made.push(kept);
    const goneId = (await bpf.setPolicy(gone, { action: 'enforce', allow: ['read'] })).cgid;
    const keptId = (await bpf.setPolicy(kept, { action: 'enforce', allow: ['read'] })).cgid;
    rmdirSync(gone);
    await startAgent();
    const registered = (await bpf.counters()).cgroups.map((c) => c.cgid);
    expect(registered).toContain(keptId);
    expect(registered).not.toContain(goneId);
    expect(
      await eventually(
        'read pod phase',
        () => phaseOf(readDir),
        (p) => p === 'boot',
      ),
    ).toBe('boot');
    // Boot allows every call: start-up is the seccomp profile's business.
    expect(await readChild.send('getppid')).toBe(`ok ${process.pid}`);
    expect(await phaseOf(bridgeDir)).toBeNull();
    expect(await phaseOf(elsewhereDir)).toBeNull();
    const list = api.lists()[0];
    expect(list.path).toBe(`/api/v1/namespaces/${NS}/pods`);
    expect(list.query).toMatchObject({ labelSelector: LABEL, fieldSelector: `spec.nodeName=${NODE}` });
    expect(list.authorization).toBe(`Bearer ${api.token}`);
    expect(await metric('fhirguard_workers', { tier: 'read', state: 'starting' })).toBe(1);
  });

  it('switches it to serve once the pod is Ready; a call outside the serve set kills the process (enforce)', async () => {
    expect(loadEbpfProfile(path.join(REPO, 'profiles', 'ebpf', 'read.json')).serve).not.toContain('getppid');
    api.put(pod({ ...read, ready: true, readySince: at(0) }));
    await eventually(
      'read pod phase',
      () => phaseOf(readDir),
      (p) => p === 'serve',
    );
    expect(await readChild.send('getpid')).toBe(`ok ${readChild.pid}`);
    expect(await readChild.send('getppid')).toBeNull();
    expect(await readChild.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await eventually(
      'violation metric',
      () => metric('fhirguard_syscall_violations_total', { tier: 'read', syscall: 'getppid', action: 'enforce' }),
      (v) => v === 1,
    );
    expect(await metric('fhirguard_syscalls_total', { tier: 'read', syscall: 'getppid' })).toBe(2);
    expect(await metric('fhirguard_workers', { tier: 'read', state: 'serving' })).toBe(1);
    expect(await metric('fhirguard_enforcement_active', { tier: 'read', mechanism: 'ebpf' })).toBe(1);
    expect(await metric('fhirguard_enforcement_active', { tier: 'read', mechanism: 'seccomp' })).toBe(1);
    expect(await metric('fhirguard_profile_allowed_syscalls', { tier: 'read', phase: 'serve' })).toBeGreaterThan(10);
    // The violation event names the pod in the agent's log.
    await eventually(
      'violation logged',
      async () => logged(new RegExp(`pod ${NS}/${read.name}: getppid outside tier read's serve policy \\(killed\\)`)),
      (v) => v,
    );
  });

  it('only counts in an audit tier: calls and connections outside the policy go on and show in the metrics', async () => {
    const dir = containerCgroup(write.uid, write.worker);
    const child = (writeChild = await Child.start(dir));
    const { port, server } = await listenLoopback();
    try {
      api.put(pod(write));
      await eventually(
        'write pod phase',
        () => phaseOf(dir),
        (p) => p === 'serve',
      );
      expect(await child.send('getppid')).toBe(`ok ${process.pid}`);
      expect(await child.send(`connect4 127.0.0.1 ${port}`)).toBe('ok 0');
      await eventually(
        'egress metric',
        () => metric('fhirguard_egress_denied_total', { tier: 'write' }),
        (v) => v === 1,
      );
      expect(await metric('fhirguard_syscall_violations_total', { tier: 'write', syscall: 'getppid', action: 'audit' })).toBe(1);
      expect(await metric('fhirguard_syscall_violations_total', { tier: 'write', syscall: 'socket', action: 'audit' })).toBe(1);
      expect(await metric('fhirguard_enforcement_active', { tier: 'write', mechanism: 'ebpf' })).toBe(0);
    } finally {
      server.close();
    }
  });

  it('refuses loudly a pod whose label names no tier, or a tier without its eBPF profile', async () => {
    const bogus = { ...read, uid: randomUUID(), name: 'mislabelled', tier: 'admin', worker: containerId(), ready: true };
    const noProfile = { ...read, uid: randomUUID(), name: 'reports-a', tier: 'reports', worker: containerId(), ready: true };
    const dirs = [containerCgroup(bogus.uid, bogus.worker), containerCgroup(noProfile.uid, noProfile.worker)];
    api.put(pod(bogus));
    api.put(pod(noProfile));
    await eventually(
      'refusals',
      () => metric('fhirguard_adoption_refusals_total', { reason: 'no-profile' }),
      (v) => v === 1,
    );
    expect(await metric('fhirguard_adoption_refusals_total', { reason: 'unknown-tier' })).toBe(1);
    expect(logged(/pod fhirguard\/mislabelled NOT ADOPTED: label fhirguard.io\/tier="admin" names no tier of the policy \(tiers: read, write, reports\)/)).toBe(true);
    expect(logged(/pod fhirguard\/reports-a NOT ADOPTED: tier reports has no eBPF profile/)).toBe(true);
    // Said at start too, before any pod of the tier came.
    expect(logged(/tier reports has no eBPF profile .*: pods of tier reports will NOT be adopted/)).toBe(true);
    for (const d of dirs) expect(await phaseOf(d)).toBeNull();
    expect(await metric('fhirguard_workers', { tier: 'reports', state: 'refused' })).toBe(1);
  });

  it('moves a restarted container to its new cgroup, in boot until the pod is Ready again, and keeps the counts', async () => {
    const restarted = { ...read, worker: containerId(), restarts: 1, startedAt: at(0) };
    const newDir = containerCgroup(read.uid, restarted.worker);
    // The pod still says Ready from before the restart: not a reason to serve.
    api.put(pod({ ...restarted, ready: true, readySince: at(5000) }));
    await eventually(
      'new cgroup',
      () => phaseOf(newDir),
      (p) => p !== null,
    );
    expect(await phaseOf(newDir)).toBe('boot');
    expect(await phaseOf(readDir)).toBeNull();
    expect(await metric('fhirguard_worker_restarts_total', { tier: 'read' })).toBe(1);
    expect(await metric('fhirguard_syscall_violations_total', { tier: 'read', syscall: 'getppid', action: 'enforce' })).toBe(1);
    api.put(pod({ ...restarted, ready: true, readySince: at(0) }));
    await eventually(
      'restarted pod phase',
      () => phaseOf(newDir),
      (p) => p === 'serve',
    );
    read.worker = restarted.worker;
    readDir = newDir;
  });

  it('retires a deleted pod: its cgroup leaves the policy maps, its counts stay in the metrics', async () => {
    const cgid = await bpf.cgroupId(readDir);
    // The kubelet removes a pod's cgroups before the API server deletes the pod.
    await removeCgroup(readDir);
    api.delete(read.uid);
    await eventually(
      'deleted pod',
      () => registered(cgid),
      (r) => !r,
    );
    expect(await metric('fhirguard_syscall_violations_total', { tier: 'read', syscall: 'getppid', action: 'enforce' })).toBe(1);
    expect(await metric('fhirguard_workers', { tier: 'read', state: 'serving' })).toBe(0);
    expect(logged(/fhirguard-worker-read-7d9f-a: policy retired \(the pod is gone\)/)).toBe(true);
  });

  it('keeps the policy on a worker whose pod loses its label, until its container ends', async () => {
    const dir = containerCgroup(write.uid, write.worker);
    const cgid = await bpf.cgroupId(dir);
    const unlabelled = pod(write);
    delete unlabelled.metadata.labels![LABEL];
    api.put(unlabelled); // the watch gets DELETED: the pod left its label selector
    await eventually(
      'said so',
      async () => logged(/fhirguard-worker-write-5c4b-a is no longer selected .* tier write's policy stays on it/),
      (v) => v,
    );
    expect(await phaseOf(dir)).toBe('serve');
    expect(await writeChild.send('getppid')).toBe(`ok ${process.pid}`);
    expect(await metric('fhirguard_syscall_violations_total', { tier: 'write', syscall: 'getppid', action: 'audit' })).toBe(2);
    writeChild.proc.kill('SIGKILL');
    await writeChild.exited;
    await removeCgroup(dir);
    api.put(pod({ ...read, uid: randomUUID(), name: 'any-event', tier: 'admin' })); // any event: the agent looks again
    await eventually(
      'retired',
      () => registered(cgid),
      (r) => !r,
    );
    expect(await metric('fhirguard_syscall_violations_total', { tier: 'write', syscall: 'getppid', action: 'audit' })).toBe(2);
  });

  it('lists again when its watch has expired, and retires the pods deleted meanwhile', async () => {
    const gone = { ...read, uid: randomUUID(), name: 'fhirguard-worker-read-7d9f-c', worker: containerId(), ready: false };
    const dir = containerCgroup(gone.uid, gone.worker);
    api.put(pod(gone));
    await eventually(
      'adopted',
      () => phaseOf(dir),
      (p) => p === 'boot',
    );
    const cgid = await bpf.cgroupId(dir);
    const lists = api.lists().length;
    await removeCgroup(dir);
    api.expireWatches({ deleteSilently: [gone.uid] });
    await eventually(
      'retired after the new list',
      () => registered(cgid),
      (r) => !r,
    );
    expect(api.lists().length).toBe(lists + 1);
    await eventually(
      'watching again',
      async () => api.openWatches(),
      (n) => n === 1,
    );
  });

  it('exports every enforcement metric the Grafana dashboard reads, and answers /readyz', async () => {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const proxyOnly = new Set((await new ProxyMetrics(['read'], { processMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    const queried = new Set(dashboardQueries(loadDashboard()).flatMap((q) => metricNames(q.promql)));
    const enforcement = [...queried].map((n) => n.replace(/_(bucket|sum|count)$/, '')).filter((n) => !proxyOnly.has(n));
    expect(enforcement.length).toBeGreaterThanOrEqual(8);
    expect(enforcement.filter((n) => !exported.has(n))).toEqual([]);
    expect((await fetch(`${adminUrl}/readyz`)).status).toBe(200);
  });

  it('stops on SIGTERM with exit status 0', async () => {
    agent!.proc.kill('SIGTERM');
    expect(await agent!.exited).toBe(0);
  });
});
