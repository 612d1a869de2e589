// Where the kubelet put a pod's containers in the cgroup v2 hierarchy. Both cgroup drivers:
//   systemd   kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid, - as _>.slice/<runtime>-<id>.scope
//             (guaranteed pods one level up: kubepods.slice/kubepods-pod<uid>.slice/...)
//   cgroupfs  kubepods/<qos>/pod<uid>/<id>
// with <runtime> cri-containerd, crio or docker. A runtime may run the container's processes
// in a cgroup below the container's own (crun's nested `container`): the policy is keyed by
// the exact cgroup of a process, so every directory of the container is returned.

import { existsSync, readdirSync, statSync, type Dirent } from 'node:fs';
import path from 'node:path';

/** Relative to the cgroup v2 mount, where kubelets put pods (first that exists wins). */
export const KUBEPODS_CANDIDATES = ['kubepods.slice', 'kubepods', 'kubelet.slice/kubelet-kubepods.slice', 'kubelet/kubepods'];

/** The kubelet's pods directory under the cgroup v2 mount, or null. */
export function findKubepods(cgroup2: string): string | null {
  for (const c of KUBEPODS_CANDIDATES) {
    const dir = path.join(cgroup2, c);
    if (existsSync(dir)) return dir;
  }
  return null;
}

// `pod<uid>` (cgroupfs) or `...-pod<uid with _>.slice` (systemd); static pods have a hash uid.
const POD_DIR = /(?:^|-)pod([0-9a-f][0-9a-f_-]{15,})(?:\.slice)?$/;
/** Pods sit at most this deep below the pods directory (kubepods-<qos>.slice/...pod.slice). */
const POD_DEPTH = 3;

function subdirs(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  } catch {
    return []; // removed meanwhile
  }
}

export class PodCgroups {
  constructor(readonly root: string) {}

  /** The pod's cgroup directory, or null. */
  podDir(uid: string): string | null {
    const want = uid.toLowerCase().replace(/_/g, '-');
    let level = [this.root];
    for (let depth = 0; depth < POD_DEPTH && level.length; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        for (const e of subdirs(dir)) {
          const m = POD_DIR.exec(e.name);
          if (!m) next.push(path.join(dir, e.name));
          else if (m[1].replace(/_/g, '-') === want) return path.join(dir, e.name);
        }
      }
      level = next;
    }
    return null;
  }

  /** The container's cgroup directory and those below it (the container's first), or null. */
  containerDirs(podUid: string, containerId: string): string[] | null {
    const pod = this.podDir(podUid);
    if (!pod) return null;
    const id = containerId.toLowerCase();
    const own = subdirs(pod).find((e) => {
      if (e.name === id) return true;
      // <runtime>-<id>.scope or <runtime>-<id>; CRI-O's conmon has a scope of its own.
      const m = /^([a-z-]+)-([0-9a-f]+)(\.scope)?$/.exec(e.name);
      return m !== null && m[2] === id && !m[1].includes('conmon');
    });
    if (!own) return null;
    const dirs: string[] = [];
    const walk = (dir: string): void => {
      dirs.push(dir);
      for (const e of subdirs(dir)) walk(path.join(dir, e.name));
    };
    walk(path.join(pod, own.name));
    return dirs;
  }
}

/**
 * The ids of every cgroup that exists now under `mount` (a cgroup v2 id is its directory's
 * inode number). An id registered with the eBPF programs that is not among them belongs to a
 * cgroup that is gone for good: ids are never reused.
 */
export function liveCgroupIds(mount: string): Set<string> {
  const ids = new Set<string>();
  const walk = (dir: string): void => {
    try {
      ids.add(statSync(dir, { bigint: true }).ino.toString());
    } catch {
      return;
    }
    for (const e of subdirs(dir)) walk(path.join(dir, e.name));
  };
  walk(mount);
  return ids;
}
