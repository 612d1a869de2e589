// A tier's container spec (enforce/confine.ts) turned into one that runs from an unpacked
// worker image: the image's root, read-only, instead of bind mounts of host files; only
// the database directory (read-only for read-only tiers) and the worker's socket directory
// come from the host, mounted at the image's mount points. Namespaces, capabilities,
// limits, cgroup and seccomp stay exactly the tier's.

import type { ContainerSpec } from '../enforce/oci-bundle';
import { DATA_DIR_LABEL, IMAGE_DATA_DIR, IMAGE_SOCKET_DIR, SOCKET_DIR_LABEL } from './content';
import type { ImageConfig } from './layout';

export interface ImageRoot {
  digest: string;
  rootfs: string;
  /** The image's environment, working directory and entrypoint (node running bin/fhirguard). */
  env: string[];
  cwd: string;
  entrypoint: string[];
  /** Where the image expects the database directory and the socket directory. */
  dataDir: string;
  socketDir: string;
}

export function imageRootOf(digest: string, rootfs: string, config: ImageConfig): ImageRoot {
  const c = config.config ?? {};
  if (!c.Entrypoint?.length) throw new Error(`image ${digest} has no entrypoint: it is not a fhirguard worker image`);
  return {
    digest,
    rootfs,
    env: c.Env ?? [],
    cwd: c.WorkingDir || '/',
    entrypoint: c.Entrypoint,
    dataDir: c.Labels?.[DATA_DIR_LABEL] ?? IMAGE_DATA_DIR,
    socketDir: c.Labels?.[SOCKET_DIR_LABEL] ?? IMAGE_SOCKET_DIR,
  };
}

export function imageContainerSpec(spec: ContainerSpec, root: ImageRoot, host: { dataDir: string; socketDir: string; readOnly: boolean }): ContainerSpec {
  const keys = new Set(root.env.map((e) => e.split('=')[0]));
  return {
    ...spec,
    rootfs: root.rootfs,
    readOnly: [],
    writable: [],
    rootSymlinks: {},
    binds: [
      { source: host.dataDir, destination: root.dataDir, writable: !host.readOnly },
      { source: host.socketDir, destination: root.socketDir, writable: true },
    ],
    env: [...root.env, ...spec.env.filter((e) => !keys.has(e.split('=')[0]))],
    cwd: root.cwd,
  };
}
