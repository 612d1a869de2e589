// `fhirguard agent --adopt-pods <label-key>`: the agent's node mode on Kubernetes. The kubelet
// runs the worker pods (with their tier's seccomp profile); the agent on each node puts the
// tier's eBPF policy on the cgroups of the pods there that carry the tier label. These are the
// options of that mode, declared in the agent command's table (each with its environment name).

import type { OptionSpec } from '../../cli/command';
import { parseListen } from '../../worker/listen';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const NODE_MODE_OPTIONS: Record<string, OptionSpec> = {
  'adopt-pods': {
    type: 'string',
    env: 'FHIRGUARD_ADOPT_PODS',
    arg: '<label-key>',
    help: 'node mode (Kubernetes): adopt the pods of this node carrying this label, whose value names their tier; no runc, no workers of its own',
  },
  admin: {
    type: 'string',
    env: 'FHIRGUARD_AGENT_ADMIN',
    arg: '<host:port>',
    help: 'with --adopt-pods: the admin listener (GET /metrics, /healthz, /readyz; default 127.0.0.1:9465)',
  },
  'node-name': {
    type: 'string',
    env: 'FHIRGUARD_NODE_NAME',
    arg: '<name>',
    help: "with --adopt-pods: this node's name (spec.nodeName of its pods; a DaemonSet passes it from the downward API)",
  },
  namespace: {
    type: 'string',
    env: 'FHIRGUARD_POD_NAMESPACE',
    arg: '<name>',
    default: 'fhirguard',
    help: 'with --adopt-pods: the namespace of the worker pods',
  },
  container: {
    type: 'string',
    env: 'FHIRGUARD_ADOPT_CONTAINER',
    arg: '<name>',
    default: 'worker',
    help: "with --adopt-pods: the container of each pod that runs the worker and gets the tier's eBPF policy",
  },
  'pod-cgroups': {
    type: 'string',
    env: 'FHIRGUARD_POD_CGROUPS',
    arg: '<dir>',
    help: "with --adopt-pods: the kubelet's cgroup v2 directory of pods (default <cgroup2>/kubepods.slice or <cgroup2>/kubepods)",
  },
  'kube-service-account': {
    type: 'string',
    env: 'FHIRGUARD_KUBE_SERVICE_ACCOUNT',
    arg: '<dir>',
    default: SERVICE_ACCOUNT_DIR,
    help: 'with --adopt-pods: the service account token and CA of the pod (the API server is $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)',
  },
};

export interface NodeModeOptions {
  labelKey: string;
  admin: { host: string; port: number };
  nodeName: string;
  namespace: string;
  container: string;
  podCgroups?: string;
  serviceAccountDir: string;
}

export class UsageError extends Error {}

function adminAddress(text: string): { host: string; port: number } {
  let a;
  try {
    a = parseListen(text);
  } catch {
    a = null;
  }
  if (!a || !('host' in a)) throw new UsageError(`--admin: expected <host:port>, got "${text}"`);
  return a;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function nodeModeOptions(values: Record<string, string | boolean | string[] | undefined>): NodeModeOptions {
  const labelKey = str(values['adopt-pods']);
  if (!labelKey) throw new UsageError('--adopt-pods needs a label key, e.g. fhirguard.io/tier');
  if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(labelKey)) {
    throw new UsageError(`--adopt-pods: "${labelKey}" is not a Kubernetes label key`);
  }
  const nodeName = str(values['node-name']);
  if (!nodeName) {
    throw new UsageError('--adopt-pods needs the node name: --node-name or FHIRGUARD_NODE_NAME (a DaemonSet sets it from spec.nodeName)');
  }
  return {
    labelKey,
    admin: adminAddress(str(values.admin) ?? '127.0.0.1:9465'),
    nodeName,
    namespace: str(values.namespace) ?? 'fhirguard',
    container: str(values.container) ?? 'worker',
    ...(str(values['pod-cgroups']) ? { podCgroups: str(values['pod-cgroups']) } : {}),
    serviceAccountDir: str(values['kube-service-account']) ?? SERVICE_ACCOUNT_DIR,
  };
}
