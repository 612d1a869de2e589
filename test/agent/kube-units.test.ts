// The node agent's pieces without the kernel: where each cgroup driver and runtime puts a
// pod's containers (directory trees in a temp directory, named as kubelets name them), when a
// pod is ready to serve, its options, its API client against the loopback pods API (the one
// stand-in: Kubernetes cannot run here), and what its modules import: no proxy code, no runc.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inClusterConfig, KubeApi, KubeApiError, KubeConfigError } from '../../src/agent/kube/api';
import { findKubepods, PodCgroups } from '../../src/agent/kube/cgroups';
import { nodeModeOptions, UsageError } from '../../src/agent/kube/options';
import { readyToServe, runtimeId, type Pod } from '../../src/agent/kube/pods';
import { main } from '../../src/cli';
import { FakeKubeApi } from '../helpers/kube-api-server';

const tmp = mkdtempSync(path.join(tmpdir(), 'fg-kube-units-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const UID = '3f1c2a9e-7b44-4d0e-9c1a-5e6f7a8b9c0d';
const ID = 'ab12'.repeat(16);

function tree(name: string, dirs: string[]): string {
  const root = path.join(tmp, name);
  for (const d of dirs) mkdirSync(path.join(root, d), { recursive: true });
  return root;
}

describe('PodCgroups: a container cgroup where each kubelet driver and runtime puts it', () => {
  const us = UID.replace(/-/g, '_');
  it.each([
    ['systemd, burstable, containerd', `kubepods-burstable.slice/kubepods-burstable-pod${us}.slice/cri-containerd-${ID}.scope`],
    ['systemd, guaranteed, containerd', `kubepods-pod${us}.slice/cri-containerd-${ID}.scope`],
    ['systemd, besteffort, CRI-O', `kubepods-besteffort.slice/kubepods-besteffort-pod${us}.slice/crio-${ID}.scope`],
    ['cgroupfs, burstable', `burstable/pod${UID}/${ID}`],
    ['cgroupfs, guaranteed', `pod${UID}/${ID}`],
  ])('%s', (name, container) => {
    const root = tree(name.replace(/\W+/g, '-'), [container, container.replace(ID, 'cd34'.repeat(16)), 'kubepods-burstable.slice/kubepods-burstable-pod0000aaaa_1111_2222_3333_444455556666.slice']);
    expect(new PodCgroups(root).containerDirs(UID, ID)).toEqual([path.join(root, container)]);
    expect(new PodCgroups(root).containerDirs(UID, 'ef56'.repeat(16))).toBeNull();
    expect(new PodCgroups(root).containerDirs('0000aaaa-1111-2222-3333-444455556666', ID)).toBeNull();
  });

  it("includes the cgroups a runtime nests in the container's, and never CRI-O's conmon scope", () => {
    const pod = `kubepods-burstable.slice/kubepods-burstable-pod${us}.slice`;
    const root = tree('nested', [`${pod}/crio-conmon-${ID}.scope`, `${pod}/crio-${ID}.scope/container`]);
    expect(new PodCgroups(root).containerDirs(UID, ID)).toEqual([path.join(root, pod, `crio-${ID}.scope`), path.join(root, pod, `crio-${ID}.scope`, 'container')]);
  });

  it('finds the kubelet pods directory under a cgroup v2 mount', () => {
    expect(findKubepods(tree('mount-systemd', ['kubepods.slice', 'system.slice']))).toBe(path.join(tmp, 'mount-systemd', 'kubepods.slice'));
    expect(findKubepods(tree('mount-cgroupfs', ['kubepods/burstable']))).toBe(path.join(tmp, 'mount-cgroupfs', 'kubepods'));
    expect(findKubepods(tree('mount-none', ['system.slice']))).toBeNull();
  });
});

describe('pods', () => {
  const at = (s: number): string => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString().replace(/\.\d+Z$/, 'Z');
  const pod = (o: { ready: boolean; started: number; readySince: number; podReady?: boolean }): Pod => ({
    metadata: { name: 'w', namespace: 'fhirguard', uid: UID },
    spec: { containers: [{ name: 'worker' }] },
    status: {
      conditions: [{ type: 'Ready', status: (o.podReady ?? o.ready) ? 'True' : 'False', lastTransitionTime: at(o.readySince) }],
      containerStatuses: [{ name: 'worker', containerID: `containerd://${ID}`, ready: o.ready, restartCount: 0, state: { running: { startedAt: at(o.started) } } }],
    },
  });

  it('are ready to serve when container and pod are ready, the pod since this container started', () => {
    expect(readyToServe(pod({ ready: true, started: 10, readySince: 14 }), 'worker')).toBe(true);
    expect(readyToServe(pod({ ready: false, started: 10, readySince: 14 }), 'worker')).toBe(false);
    expect(readyToServe(pod({ ready: true, started: 10, readySince: 14, podReady: false }), 'worker')).toBe(false);
    // Restarted after the pod last turned Ready: its start-up is not over as far as anyone knows.
    expect(readyToServe(pod({ ready: true, started: 20, readySince: 14 }), 'worker')).toBe(false);
    expect(readyToServe(pod({ ready: true, started: 10, readySince: 14 }), 'bridge')).toBe(false);
  });

  it('name their containers by the runtime id', () => {
    expect(runtimeId(`containerd://${ID}`)).toBe(ID);
    expect(runtimeId(`cri-o://${ID.toUpperCase()}`)).toBe(ID);
    expect(runtimeId('containerd://../../etc')).toBeNull();
    expect(runtimeId(undefined)).toBeNull();
  });
});

describe('node mode options', () => {
  const base = { 'adopt-pods': 'fhirguard.io/tier', 'node-name': 'node-a' };
  it('need a label key and the node name, and default the rest', () => {
    expect(nodeModeOptions(base)).toEqual({
      labelKey: 'fhirguard.io/tier',
      admin: { host: '127.0.0.1', port: 9465 },
      nodeName: 'node-a',
      namespace: 'fhirguard',
      container: 'worker',
      serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount',
    });
    expect(() => nodeModeOptions({ 'adopt-pods': 'fhirguard.io/tier' })).toThrow(/FHIRGUARD_NODE_NAME/);
    expect(() => nodeModeOptions({ ...base, 'adopt-pods': 'tier=read' })).toThrow(UsageError);
    expect(() => nodeModeOptions({ ...base, admin: 'unix:/run/x.sock' })).toThrow(/--admin/);
    expect(nodeModeOptions({ ...base, admin: '[::]:9465' }).admin).toEqual({ host: '::', port: 9465 });
  });

  it('--admin without --adopt-pods is a usage error (the proxy exports the runc agent counters)', async () => {
    expect(await main(['agent', '--admin', '127.0.0.1:9465', '--log-level', 'silent'])).toBe(2);
  });
});

describe('the pods API client', () => {
  let api: FakeKubeApi;
  beforeAll(async () => {
    api = await FakeKubeApi.start(path.join(tmp, 'api'));
  }, 30_000);
  afterAll(() => api.close());
  const sel = { namespace: 'fhirguard', labelSelector: 'fhirguard.io/tier', fieldSelector: 'spec.nodeName=node-a' };

  it('uses the in-cluster configuration, and verifies the server against the service account CA', async () => {
    const client = new KubeApi(inClusterConfig(api.serviceAccountDir, api.env));
    expect(await client.listPods(sel)).toEqual({ resourceVersion: expect.any(String), items: [] });
    const other = path.join(tmp, 'other-ca');
    mkdirSync(other);
    const foreign = await FakeKubeApi.start(other);
    try {
      const wrongCa = new KubeApi({ ...inClusterConfig(api.serviceAccountDir, api.env), ca: readFileSync(path.join(other, 'serviceaccount', 'ca.crt')) });
      await expect(wrongCa.listPods(sel)).rejects.toThrow(/certificate/);
    } finally {
      await foreign.close();
    }
  });

  it('says what the API server refused', async () => {
    const cfg = { ...inClusterConfig(api.serviceAccountDir, api.env), tokenFile: path.join(tmp, 'bad-token') };
    writeFileSync(cfg.tokenFile, 'not-the-token');
    const err = await new KubeApi(cfg).listPods(sel).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(err).toMatchObject({ status: 401, message: 'GET /api/v1/namespaces/fhirguard/pods: HTTP 401: Unauthorized' });
  });

  it('refuses to start outside a pod', () => {
    expect(() => inClusterConfig(api.serviceAccountDir, {})).toThrow(KubeConfigError);
    expect(() => inClusterConfig(path.join(tmp, 'nowhere'), api.env)).toThrow(/no service account credentials/);
  });
});

describe('what node mode loads', () => {
  /** Every source file reachable from `entry` by value imports and re-exports (type-only ones are erased). */
  function reachable(entry: string): string[] {
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)';/gm)) {
        if (m[1]) continue;
        const base = path.resolve(path.dirname(file), m[2]);
        const next = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => existsSync(f));
        if (next) visit(next);
      }
    };
    visit(entry);
    return [...seen].map((f) => path.relative(path.resolve(__dirname, '..', '..'), f));
  }

  it('reaches no proxy code and no runc from the node agent', () => {
    const files = reachable(path.resolve(__dirname, '..', '..', 'src', 'agent', 'kube', 'node-agent.ts'));
    expect(files).toContain('src/metrics/enforcement.ts');
    expect(files.filter((f) => f.startsWith('src/proxy/') || /src\/enforce\/(runc|container|launch)\.ts/.test(f))).toEqual([]);
  });
});
