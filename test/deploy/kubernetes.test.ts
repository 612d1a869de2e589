// deploy/kubernetes: every manifest validated against the Kubernetes API schemas
// (kubernetes-models, plus a TypeScript check that rejects unknown fields), the
// SeccompProfile objects checked for the Security Profiles Operator's shape and against a
// fresh `fhirguard profile export --format spo`, and the pieces checked against each other:
// worker Deployments name their tier's profile by the path SPO installs it at, the rendering
// agrees with `kubectl kustomize` where kubectl is installed, Services
// select pods that exist, the policy routes each tier to its Service, every fhirguard
// container uses options its command declares, the agent gets exactly the documented eBPF
// privileges and every pod of the fhirguard namespace meets the restricted Pod Security level.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { exportProfiles } from '../../src/profile/export';
import { loadProfileSet } from '../../src/profile/load';
import { loadPolicy } from '../../src/policy';
import { undeclaredOptions } from './cli-options';
import { documentedAgentCapabilities, parseDockerfile } from './dockerfile';
import { comparable, kubectlKustomize, modelModule, render, unknownFields, validateModel, type K8sObject } from './kustomize';

const REPO = resolve(__dirname, '..', '..');
const DIR = join(REPO, 'deploy', 'kubernetes');
const { kustomization, objects } = render(DIR);
// SPO 1.x: SeccompProfile v1, cluster-scoped (test/deploy/spo.test.ts checks each SPO release).
const SPO_API = 'security-profiles-operator.x-k8s.io/v1';
/** Kinds without a namespace: Namespaces, and SeccompProfiles since SPO 0.9. */
const CLUSTER_SCOPED = new Set(['Namespace', 'SeccompProfile']);

const of = (kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const named = (kind: string, name: string, namespace?: string): K8sObject | undefined =>
  objects.find((o) => o.kind === kind && o.metadata.name === name && (namespace === undefined || o.metadata.namespace === namespace));
const workloads = (): K8sObject[] => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
const podSpec = (w: K8sObject): any => w.spec.template.spec;
const allContainers = (w: K8sObject): any[] => [...(podSpec(w).initContainers ?? []), ...podSpec(w).containers];
const envOf = (c: any): Record<string, string> => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? '(from field)']));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
const policy = loadPolicy(join(DIR, 'policy.yaml'));

describe('deploy/kubernetes manifests', () => {
  it('lists every manifest in the kustomization, and only existing ones', () => {
    // Subdirectories holding a kustomization are components (spo-0.9, spo-0.8), not manifests.
    const components = readdirSync(DIR, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('/kustomization.yaml'))
      .map((f) => dirname(f));
    const files = readdirSync(DIR, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'policy.yaml' && !components.includes(dirname(f)))
      .sort();
    expect([...kustomization.resources].sort()).toEqual(files);
  });

  it('gives every object a name and a namespace, except the cluster-scoped namespaces and seccomp profiles', () => {
    for (const o of objects) {
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      if (CLUSTER_SCOPED.has(o.kind)) expect({ object: `${o.kind}/${o.metadata.name}`, namespace: o.metadata.namespace }).toEqual({ object: `${o.kind}/${o.metadata.name}`, namespace: undefined });
      else
        expect({ object: `${o.kind}/${o.metadata.name}`, namespace: o.metadata.namespace }).toEqual({
          object: `${o.kind}/${o.metadata.name}`,
          namespace: expect.stringMatching(/^fhirguard(-system)?$/),
        });
    }
    const namespaces = of('Namespace').map((n) => n.metadata.name);
    for (const o of objects) if (o.metadata.namespace) expect(namespaces).toContain(o.metadata.namespace);
  });

  it('validates every built-in object against the Kubernetes API schema', () => {
    const builtIn = objects.filter((o) => modelModule(o.apiVersion, o.kind));
    expect(builtIn.length).toBe(objects.length - of('SeccompProfile').length);
    const errors: string[] = [];
    for (const o of builtIn) {
      try {
        validateModel(o);
      } catch (err) {
        errors.push(`${o.__file} ${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
      }
    }
    expect(errors).toEqual([]);
  });

  it('uses no field the Kubernetes API types do not have', () => {
    expect(unknownFields(objects)).toEqual([]);
  }, 120_000);

  it('finds misspelt fields (the strict check works)', () => {
    const bad: K8sObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { selectr: { a: 'b' } } };
    expect(unknownFields([bad]).join('\n')).toMatch(/selectr/);
  }, 120_000);

  it('selects its own pods in every Deployment and DaemonSet, and every Service reaches pods', () => {
    for (const w of workloads()) expect(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels)).toBe(true);
    for (const s of of('Service')) {
      const targets = workloads().filter((w) => w.metadata.namespace === s.metadata.namespace && matches(s.spec.selector, w.spec.template.metadata.labels));
      expect({ service: s.metadata.name, workloads: targets.length }).toEqual({ service: s.metadata.name, workloads: 1 });
      const ports = targets[0].spec.template.spec.containers.flatMap((c: any) => c.ports ?? []);
      for (const p of s.spec.ports) expect(ports.map((q: any) => (typeof p.targetPort === 'string' ? q.name : q.containerPort))).toContain(p.targetPort);
    }
  });

  it('mounts only ConfigMaps and claims that exist in the same namespace', () => {
    for (const w of workloads()) {
      for (const v of podSpec(w).volumes ?? []) {
        if (v.configMap) expect(named('ConfigMap', v.configMap.name, w.metadata.namespace)).toBeDefined();
        if (v.persistentVolumeClaim) expect(named('PersistentVolumeClaim', v.persistentVolumeClaim.claimName, w.metadata.namespace)).toBeDefined();
      }
    }
  });

  it('runs only the images the Dockerfile targets build, under the placeholder registry, tagged with the version', () => {
    const targets = parseDockerfile(join(REPO, 'Dockerfile')).map((s) => s.name);
    const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version;
    const images = new Set(workloads().flatMap((w) => allContainers(w).map((c) => c.image)));
    expect(images.size).toBeGreaterThan(0);
    for (const image of images) {
      const m = /^registry\.invalid\/fhirguard\/([a-z]+):(.+)$/.exec(image);
      expect({ image, target: m !== null && targets.includes(m[1]), tag: m?.[2] }).toEqual({ image, target: true, tag: version });
    }
    for (const i of kustomization.images) expect(i).toEqual({ name: expect.stringMatching(/^registry\.invalid\/fhirguard\//), newTag: version });
  });

  const kubectl = kubectlKustomize(DIR);
  (kubectl ? it : it.skip)('renders as `kubectl kustomize` does (skipped where kubectl is not installed)', () => {
    const generated = (kustomization.configMapGenerator ?? []).map((g: any) => g.name);
    expect(comparable(objects, generated)).toEqual(comparable(kubectl as K8sObject[], generated));
  });
});

describe('seccomp profiles through the Security Profiles Operator', () => {
  const profiles = of('SeccompProfile');

  it("has one SPO SeccompProfile per tier of the policy, and the front door's", () => {
    expect(profiles.map((p) => p.metadata.name).sort()).toEqual([...policy.tiers.map((t) => `fhirguard-${t.name}`), 'fhirguard-proxy'].sort());
  });

  it("confines the proxy with the front door's recorded profile, at the path SPO installs it", () => {
    const proxy = podSpec(named('Deployment', 'fhirguard-proxy') as K8sObject).containers.find((c: any) => c.name === 'proxy');
    expect(proxy.securityContext.seccompProfile).toEqual({ type: 'Localhost', localhostProfile: 'operator/fhirguard-proxy.json' });
  });

  it('has the SPO SeccompProfile shape', () => {
    const specKeys = new Set(['defaultAction', 'architectures', 'syscalls', 'flags', 'baseProfileName', 'listenerPath', 'listenerMetadata', 'disabled']);
    const ruleKeys = new Set(['names', 'action', 'errnoRet', 'args']);
    const actions = /^SCMP_ACT_(ALLOW|ERRNO|KILL|KILL_PROCESS|KILL_THREAD|LOG|TRACE|TRAP|NOTIFY)$/;
    for (const p of profiles) {
      expect(p.apiVersion).toBe(SPO_API);
      expect(Object.keys(p.spec).filter((k) => !specKeys.has(k))).toEqual([]);
      expect(p.spec.defaultAction).toMatch(actions);
      expect(p.spec.architectures.length).toBeGreaterThan(0);
      for (const a of p.spec.architectures) expect(a).toMatch(/^SCMP_ARCH_[A-Z0-9_]+$/);
      expect(p.spec.syscalls.length).toBeGreaterThan(0);
      for (const r of p.spec.syscalls) {
        expect(Object.keys(r).filter((k) => !ruleKeys.has(k))).toEqual([]);
        expect(r.action).toMatch(actions);
        expect(r.names.length).toBeGreaterThan(0);
        for (const n of r.names) expect(n).toMatch(/^[a-z0-9_]+$/);
        for (const a of r.args ?? []) {
          expect(Object.keys(a).sort()).toEqual(expect.arrayContaining(['index', 'op', 'value']));
          expect(a.op).toMatch(/^SCMP_CMP_(NE|LT|LE|EQ|GE|GT|MASKED_EQ)$/);
        }
      }
    }
  });

  it('is exactly what `fhirguard profile export --format spo` makes of profiles/ now', () => {
    const fresh = exportProfiles(loadProfileSet(join(REPO, 'profiles')), 'spo').files;
    const stale = fresh.filter((f) => {
      let committed = '';
      try {
        committed = readFileSync(join(DIR, 'seccomp', f.name), 'utf8');
      } catch {
        return true;
      }
      return committed !== f.content;
    });
    // Regenerate: fhirguard profile export --format spo --out deploy/kubernetes/seccomp
    expect(stale.map((f) => f.name)).toEqual([]);
  });

  it('confines each tier worker with its own profile, at the path SPO installs it', () => {
    for (const tier of policy.tiers) {
      const d = named('Deployment', `fhirguard-worker-${tier.name}`);
      expect(d).toBeDefined();
      const profile = profiles.find((p) => p.metadata.name === `fhirguard-${tier.name}`) as K8sObject;
      // SPO >= 0.9 (cluster-scoped SeccompProfile) writes <kubelet>/seccomp/operator/<name>.json.
      expect(profile.metadata.namespace).toBeUndefined();
      const worker = podSpec(d as K8sObject).containers.find((c: any) => c.name === 'worker');
      const sp = worker.securityContext?.seccompProfile ?? podSpec(d as K8sObject).securityContext?.seccompProfile;
      expect(sp).toEqual({ type: 'Localhost', localhostProfile: `operator/${profile.metadata.name}.json` });
    }
  });
});

describe('tiers on Kubernetes', () => {
  it('loads the Kubernetes policy with fhirguard itself: the shipped tiers and rules, each tier served by its Service', () => {
    const shipped = parseYaml(readFileSync(join(REPO, 'profiles', 'policy.yaml'), 'utf8'));
    const here = parseYaml(readFileSync(join(DIR, 'policy.yaml'), 'utf8'));
    expect(here.rules).toEqual(shipped.rules);
    expect(here.tiers.map((t: any) => [t.name, t.timeoutMs])).toEqual(shipped.tiers.map((t: any) => [t.name, t.timeoutMs]));
    for (const tier of policy.tiers) {
      expect(tier.upstreams).toHaveLength(1);
      const url = new URL(tier.upstreams[0]);
      const svc = named('Service', `fhirguard-worker-${tier.name}`) as K8sObject;
      expect(url.hostname).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc`);
      expect(Number(url.port)).toBe(svc.spec.ports[0].port);
    }
  });

  it('runs workers with their tier: read tiers read-only down to the volume', () => {
    for (const tier of policy.tiers) {
      const d = named('Deployment', `fhirguard-worker-${tier.name}`) as K8sObject;
      const worker = podSpec(d).containers.find((c: any) => c.name === 'worker');
      expect(undeclaredOptions(worker.args, envOf(worker))).toEqual([]);
      expect(worker.args.slice(0, 3)).toEqual(['worker', '--tier', tier.name]);
      expect(worker.args.includes('--read-only')).toBe(tier.readOnly);
      const dataMount = worker.volumeMounts.find((m: any) => m.name === 'data');
      const dataVolume = podSpec(d).volumes.find((v: any) => v.name === 'data');
      expect(dataMount.readOnly === true).toBe(tier.readOnly);
      expect(dataVolume.persistentVolumeClaim.readOnly === true).toBe(tier.readOnly);
      // The worker serves on a Unix socket (the only family its profile allows); the bridge
      // serves the pod's port from the same socket.
      const listen = worker.args[worker.args.indexOf('--listen') + 1];
      const bridge = podSpec(d).containers.find((c: any) => c.name === 'bridge');
      expect(listen).toBe(`unix:${bridge.args[1].replace(/^UNIX-CONNECT:/, '')}`);
      const socketDir = dirname(listen.slice('unix:'.length));
      for (const c of [worker, bridge]) expect(c.volumeMounts.find((m: any) => m.name === 'socket').mountPath).toBe(socketDir);
      if (!tier.readOnly) expect(d.spec.replicas).toBe(1);
    }
  });

  it('runs proxies as several unprivileged replicas with options the proxy command declares', () => {
    const d = named('Deployment', 'fhirguard-proxy') as K8sObject;
    expect(d.spec.replicas).toBeGreaterThanOrEqual(2);
    const c = podSpec(d).containers[0];
    expect(undeclaredOptions(c.args, envOf(c))).toEqual([]);
    const env = envOf(c);
    const policyMount = c.volumeMounts.find((m: any) => env.FHIRGUARD_POLICY.startsWith(`${m.mountPath}/`));
    const volume = podSpec(d).volumes.find((v: any) => v.name === policyMount.name);
    const cm = named('ConfigMap', volume.configMap.name, d.metadata.namespace) as K8sObject;
    expect(Object.keys(cm.data)).toContain(env.FHIRGUARD_POLICY.slice(policyMount.mountPath.length + 1));
    const admin = c.ports.find((p: any) => p.name === 'admin').containerPort;
    expect(env.FHIRGUARD_ADMIN).toBe(`0.0.0.0:${admin}`);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(d.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(admin));
    // The FHIR Service does not publish /metrics.
    expect(named('Service', 'fhirguard')?.spec.ports.map((p: any) => p.targetPort)).toEqual(['fhir']);
  });

  it('meets the restricted Pod Security level with every pod of the fhirguard namespace', () => {
    expect(named('Namespace', 'fhirguard')?.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const w of workloads().filter((x) => x.metadata.namespace === 'fhirguard')) {
      const pod = podSpec(w);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      expect((pod.volumes ?? []).filter((v: any) => v.hostPath)).toEqual([]);
      for (const c of allContainers(w)) {
        const sc = c.securityContext ?? {};
        const where = `${w.metadata.name}/${c.name}`;
        expect({ where, nonRoot: sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot }).toEqual({ where, nonRoot: true });
        expect({ where, escalation: sc.allowPrivilegeEscalation }).toEqual({ where, escalation: false });
        expect({ where, drop: sc.capabilities?.drop, add: sc.capabilities?.add }).toEqual({ where, drop: ['ALL'], add: undefined });
        expect({ where, privileged: sc.privileged ?? false }).toEqual({ where, privileged: false });
        expect({ where, readOnlyRoot: sc.readOnlyRootFilesystem }).toEqual({ where, readOnlyRoot: true });
        const seccomp = (sc.seccompProfile ?? pod.securityContext?.seccompProfile)?.type;
        expect({ where, seccomp: ['RuntimeDefault', 'Localhost'].includes(seccomp) }).toEqual({ where, seccomp: true });
      }
    }
  });

  it('runs the proxy, the read tiers and the writing tiers as three uids and groups', () => {
    const ids = (name: string): { uid: number; gid: number } => {
      const sc = podSpec(workloads().find((w) => w.metadata.name === name)!).securityContext;
      return { uid: sc.runAsUser, gid: sc.runAsGroup };
    };
    const byClass = {
      proxy: ids('fhirguard-proxy'),
      read: policy.tiers.filter((t) => t.readOnly).map((t) => ids(`fhirguard-worker-${t.name}`)),
      write: policy.tiers.filter((t) => !t.readOnly).map((t) => ids(`fhirguard-worker-${t.name}`)),
    };
    const one = (xs: Array<{ uid: number; gid: number }>): { uid: number; gid: number } => {
      expect(new Set(xs.map((x) => `${x.uid}:${x.gid}`)).size).toBe(1);
      return xs[0];
    };
    const [proxy, read, write] = [byClass.proxy, one(byClass.read), one(byClass.write)];
    expect(new Set([proxy.uid, read.uid, write.uid]).size).toBe(3);
    expect(new Set([proxy.gid, read.gid, write.gid]).size).toBe(3);
  });

  it('lets workers talk to proxies only and open no connection', () => {
    const np = named('NetworkPolicy', 'fhirguard-workers') as K8sObject;
    const workerPods = workloads().filter((w) => matches(np.spec.podSelector.matchLabels, w.spec.template.metadata.labels));
    expect(workerPods.map((w) => w.metadata.name).sort()).toEqual(policy.tiers.map((t) => `fhirguard-worker-${t.name}`).sort());
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.egress).toEqual([]);
    const from = np.spec.ingress.flatMap((r: any) => r.from);
    const sources = workloads().filter((w) => from.some((f: any) => f.podSelector && matches(f.podSelector.matchLabels, w.spec.template.metadata.labels)));
    expect(sources.map((w) => w.metadata.name)).toEqual(['fhirguard-proxy']);
  });
});

describe('the agent DaemonSet', () => {
  const ds = named('DaemonSet', 'fhirguard-agent') as K8sObject;
  const agent = podSpec(ds).containers[0];

  it('runs in its own namespace, the only one that admits privileged pods', () => {
    expect(ds.metadata.namespace).toBe('fhirguard-system');
    expect(named('Namespace', 'fhirguard-system')?.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(podSpec(ds).hostNetwork ?? false).toBe(false);
    expect(podSpec(ds).hostPID ?? false).toBe(false);
  });

  it('holds exactly the eBPF privileges the Dockerfile documents, not privileged mode', () => {
    const sc = agent.securityContext;
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    const documented = documentedAgentCapabilities(join(REPO, 'Dockerfile'));
    expect(sc.capabilities.add.filter((c: string) => !documented.includes(c))).toEqual([]);
    expect([...sc.capabilities.add].sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON', 'SYS_ADMIN']);
    // The API server refuses allowPrivilegeEscalation: false together with CAP_SYS_ADMIN.
    expect(sc.allowPrivilegeEscalation).not.toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
  });

  it('mounts bpffs, the cgroup hierarchy and BTF from the host, BTF read-only', () => {
    const hostPaths = Object.fromEntries(
      podSpec(ds)
        .volumes.filter((v: any) => v.hostPath)
        .map((v: any) => [v.name, v.hostPath.path]),
    );
    const mounted = Object.fromEntries(agent.volumeMounts.filter((m: any) => hostPaths[m.name]).map((m: any) => [hostPaths[m.name], { at: m.mountPath, readOnly: m.readOnly === true }]));
    expect(mounted).toEqual({
      '/sys/fs/bpf': { at: '/sys/fs/bpf', readOnly: false },
      '/sys/fs/cgroup': { at: '/sys/fs/cgroup', readOnly: false },
      '/sys/kernel/btf': { at: '/sys/kernel/btf', readOnly: true },
    });
  });

  it('may read the pods of the fhirguard namespace and nothing else', () => {
    const binding = of('RoleBinding').find((b) => b.subjects.some((s: any) => s.name === podSpec(ds).serviceAccountName && s.namespace === ds.metadata.namespace)) as K8sObject;
    expect(binding.metadata.namespace).toBe('fhirguard');
    const role = named('Role', binding.roleRef.name, binding.metadata.namespace) as K8sObject;
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
    expect(of('ClusterRole')).toEqual([]);
    expect(of('ClusterRoleBinding')).toEqual([]);
  });

  it('starts the agent with options the agent command declares', () => {
    expect(undeclaredOptions(agent.args, envOf(agent))).toEqual([]);
  });
});

describe('the policy ConfigMap', () => {
  it('is the policy file, for the proxies and for the agents', () => {
    const maps = of('ConfigMap').filter((c) => c.metadata.name === 'fhirguard-policy');
    expect(maps.map((m) => m.metadata.namespace).sort()).toEqual(['fhirguard', 'fhirguard-system']);
    const tmp = mkdtempSync(join(tmpdir(), 'fg-k8s-'));
    try {
      for (const m of maps) {
        const file = join(tmp, `${m.metadata.namespace}.yaml`);
        writeFileSync(file, m.data['policy.yaml']);
        expect(loadPolicy(file).tiers.map((t) => t.name)).toEqual(policy.tiers.map((t) => t.name));
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
