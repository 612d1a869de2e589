// deploy/compose.yaml, checked as a file (no Docker engine here): the four services, images
// built from the Dockerfile's targets, the agent granted exactly the privileges the Dockerfile
// documents and the proxy none, options every fhirguard command really declares, the shared
// socket volume, Prometheus scraping the proxy's admin port, Grafana with the provisioning.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { undeclaredOptions } from './cli-options';
import { documentedAgentCapabilities, effectiveUser, isRootUser, parseDockerfile } from './dockerfile';

const REPO = resolve(__dirname, '..', '..');
const DEPLOY = join(REPO, 'deploy');
const compose: any = parseYaml(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'));
const services: Record<string, any> = compose.services;
const stages = parseDockerfile(join(REPO, 'Dockerfile'));

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  type: 'bind' | 'volume';
}

function mounts(service: any): Mount[] {
  return (service.volumes ?? []).map((v: any): Mount => {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      return { source, target, readOnly: mode === 'ro', type: /^[./~]/.test(source) ? 'bind' : 'volume' };
    }
    return { source: v.source, target: v.target, readOnly: v.read_only === true, type: v.type };
  });
}

const env = (s: any): Record<string, string> => (Array.isArray(s.environment) ? Object.fromEntries(s.environment.map((e: string) => e.split('='))) : (s.environment ?? {}));

describe('deploy/compose.yaml', () => {
  it('runs the agent, the proxy, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['agent', 'grafana', 'prometheus', 'proxy']);
  });

  it('builds fhirguard services from the Dockerfile targets of their role', () => {
    for (const name of ['agent', 'proxy']) {
      const b = services[name].build;
      expect(existsSync(join(DEPLOY, b.context, b.dockerfile ?? 'Dockerfile'))).toBe(true);
      expect(resolve(DEPLOY, b.context)).toBe(REPO);
      expect(b.target).toBe(name);
      expect(stages.map((s) => s.name)).toContain(b.target);
      // Built here, never pulled: compose would otherwise try the image name on a registry first.
      expect(services[name].pull_policy).toBe('build');
    }
  });

  it('starts each fhirguard service with options its command declares', () => {
    for (const name of ['agent', 'proxy']) {
      const s = services[name];
      expect({ service: name, problems: undeclaredOptions(s.command, env(s)) }).toEqual({ service: name, problems: [] });
    }
  });

  it('grants the agent exactly the capabilities the Dockerfile documents, and nothing wholesale', () => {
    const agent = services.agent;
    expect(agent.privileged).not.toBe(true);
    expect(agent.cap_drop).toEqual(['ALL']);
    expect([...agent.cap_add].sort()).toEqual(documentedAgentCapabilities(join(REPO, 'Dockerfile')));
    expect(agent.cap_add).toEqual(expect.arrayContaining(['SYS_ADMIN', 'BPF', 'PERFMON']));
    expect(agent.cgroup).toBe('host');
    expect(agent.pid).toBeUndefined();
    expect(agent.network_mode).toBeUndefined();
    const m = mounts(agent);
    expect(m).toEqual(
      expect.arrayContaining([
        { source: '/sys/fs/cgroup', target: '/sys/fs/cgroup', readOnly: false, type: 'bind' },
        { source: '/sys/fs/bpf', target: '/sys/fs/bpf', readOnly: false, type: 'bind' },
        { source: '/sys/kernel/btf', target: '/sys/kernel/btf', readOnly: true, type: 'bind' },
      ]),
    );
  });

  it('runs the proxy unprivileged: non-root image user, no capabilities, read-only root', () => {
    const proxy = services.proxy;
    expect(proxy.privileged).not.toBe(true);
    expect(proxy.cap_add).toBeUndefined();
    expect(proxy.cap_drop).toEqual(['ALL']);
    expect(proxy.read_only).toBe(true);
    expect(proxy.security_opt).toContain('no-new-privileges:true');
    expect(isRootUser(proxy.user ?? effectiveUser(stages, 'proxy'))).toBe(false);
  });

  it('lets the proxy reach the agent socket and the worker sockets, read-only, at the paths the agent uses', () => {
    const agentEnv = env(services.agent);
    const proxyEnv = env(services.proxy);
    expect(proxyEnv.FHIRGUARD_AGENT_SOCKET).toBe(agentEnv.FHIRGUARD_AGENT_SOCKET);
    const stateDir = agentEnv.FHIRGUARD_STATE_DIR;
    expect(agentEnv.FHIRGUARD_AGENT_SOCKET.startsWith(`${stateDir}/`)).toBe(true);
    const agentState = mounts(services.agent).find((m) => m.target === stateDir);
    const proxyState = mounts(services.proxy).find((m) => m.target === stateDir);
    expect(agentState).toMatchObject({ type: 'volume', readOnly: false });
    expect(proxyState).toMatchObject({ type: 'volume', source: agentState?.source, readOnly: true });
    // Sockets are the proxy's group's (0660): the proxy runs as the identity the agent gives them.
    expect(services.proxy.user).toBe(agentEnv.FHIRGUARD_PROXY_USER);
    const ids = ['PROXY', 'READER', 'WRITER'].map((r) => agentEnv[`FHIRGUARD_${r}_USER`]);
    expect(new Set(ids.map((i) => i.split(':')[0])).size).toBe(3);
    expect(new Set(ids.map((i) => i.split(':')[1])).size).toBe(3);
  });

  it('declares every named volume and finds every bind-mounted repository file', () => {
    const declared = Object.keys(compose.volumes ?? {});
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (m.type === 'volume') expect({ service: name, volume: m.source, declared: declared.includes(m.source) }).toEqual({ service: name, volume: m.source, declared: true });
        else if (m.source.startsWith('.')) expect({ service: name, source: m.source, exists: existsSync(join(DEPLOY, m.source)) }).toEqual({ service: name, source: m.source, exists: true });
      }
    }
  });

  it('has Prometheus scrape the admin listener of the proxy service', () => {
    const promMount = mounts(services.prometheus).find((m) => m.target === '/etc/prometheus/prometheus.yml');
    expect(promMount).toBeDefined();
    const configFile = join(DEPLOY, promMount?.source as string);
    const config: any = parseYaml(readFileSync(configFile, 'utf8'));
    const adminPort = env(services.proxy).FHIRGUARD_ADMIN.split(':').pop();
    const targets: string[] = config.scrape_configs.flatMap((c: any) => c.static_configs.flatMap((s: any) => s.targets));
    expect(targets).toEqual([`proxy:${adminPort}`]);
    expect(services.prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    // Prometheus' own checker, from the Debian package the tests install.
    const check = spawnSync('promtool', ['check', 'config', configFile], { encoding: 'utf8' });
    expect({ status: check.status, out: check.status === 0 ? '' : check.stdout + check.stderr }).toEqual({ status: 0, out: '' });
  });

  it('gives Grafana the provisioning and the dashboards, read-only', () => {
    const m = mounts(services.grafana);
    expect(m).toEqual(
      expect.arrayContaining([
        { source: '../grafana/provisioning', target: '/etc/grafana/provisioning', readOnly: true, type: 'bind' },
        { source: '../grafana/dashboards', target: '/var/lib/grafana/dashboards/fhirguard', readOnly: true, type: 'bind' },
      ]),
    );
    const home = env(services.grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(home.startsWith('/var/lib/grafana/dashboards/fhirguard/')).toBe(true);
    expect(existsSync(join(REPO, 'grafana', 'dashboards', home.split('/').pop() as string))).toBe(true);
  });

  it('publishes ports on loopback only', () => {
    for (const s of Object.values(services)) for (const p of s.ports ?? []) expect(String(p)).toMatch(/^127\.0\.0\.1:/);
  });
});
