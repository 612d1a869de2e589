// The fields of a Kubernetes Pod the node agent reads, and what it decides from them: which
// container runs the worker, whether that container runs now and under which runtime id, and
// whether the pod is ready to serve (the moment its cgroup's eBPF policy tightens to serve).

export interface ContainerStatus {
  name: string;
  /** `<runtime>://<id>`, e.g. containerd://3f2a...; absent until the runtime created it. */
  containerID?: string;
  ready: boolean;
  restartCount: number;
  state?: {
    running?: { startedAt?: string };
    waiting?: { reason?: string };
    terminated?: { exitCode: number; signal?: number; finishedAt?: string };
  };
  lastState?: { terminated?: { exitCode: number; signal?: number; finishedAt?: string } };
}

export interface SeccompProfileRef {
  type: string;
  localhostProfile?: string;
}

export interface ContainerSpec {
  name: string;
  securityContext?: { readOnlyRootFilesystem?: boolean; seccompProfile?: SeccompProfileRef };
  volumeMounts?: { name: string; readOnly?: boolean }[];
}

export interface Pod {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec: {
    nodeName?: string;
    hostNetwork?: boolean;
    securityContext?: { seccompProfile?: SeccompProfileRef };
    containers: ContainerSpec[];
    volumes?: { name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }[];
  };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
    containerStatuses?: ContainerStatus[];
  };
}

export function podName(pod: Pod): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}

/** The runtime's id of a container status (`containerd://<id>` → `<id>`), or null. */
export function runtimeId(containerID: string | undefined): string | null {
  const m = /^[a-z0-9-]+:\/\/([0-9a-f]{12,128})$/i.exec(containerID ?? '');
  return m ? m[1].toLowerCase() : null;
}

/** The container's running instance: its runtime id and when it started, or null. */
export function runningContainer(pod: Pod, container: string): { id: string; startedAt: string | undefined; status: ContainerStatus } | null {
  const status = pod.status?.containerStatuses?.find((c) => c.name === container);
  const id = runtimeId(status?.containerID);
  if (!status || !id || !status.state?.running || pod.metadata.deletionTimestamp) return null;
  return { id, startedAt: status.state.running.startedAt, status };
}

/**
 * Ready to serve: the container is ready and so is the pod (its readiness probe reached the
 * worker), and the pod became Ready after this container started. A worker that restarts while
 * the pod still counts as Ready (its probes have not failed yet) stays in boot until the pod
 * turns Ready again: its start-up is never judged by the serve set. Times have a resolution of
 * a second, so a restart within the second of the last Ready change counts as before it.
 */
export function readyToServe(pod: Pod, container: string): boolean {
  const run = runningContainer(pod, container);
  if (!run || !run.status.ready) return false;
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return false;
  const started = Date.parse(run.startedAt ?? '');
  const since = Date.parse(ready.lastTransitionTime ?? '');
  return Number.isFinite(started) && Number.isFinite(since) && since >= started;
}
