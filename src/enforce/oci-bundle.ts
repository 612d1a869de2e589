// The OCI bundle of one confined process (a worker, or a `fhirguard exec` command): a
// config.json for runc plus an empty rootfs directory. The root is read-only and made of
// read-only bind mounts of host paths at their own paths; only the paths listed as writable
// (the socket directory, and the data directory of tiers that write) accept writes.

import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OciSeccomp } from './seccomp';

export interface CreateRuntimeHook {
  path: string;
  args: string[];
  timeout?: number;
}

export interface ContainerSpec {
  /** Host name inside the container (its UTS namespace). */
  hostname: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  /** Host paths mounted read-only at the same path (files or directories). */
  readOnly: string[];
  /** Host paths mounted read-write at the same path. */
  writable: string[];
  /** Symlinks made in the container root, e.g. { lib: 'usr/lib' } as on a merged-/usr host. */
  rootSymlinks: Record<string, string>;
  /** Absolute cgroup path, e.g. /fhirguard/read/read-0 (runc creates it in every hierarchy). */
  cgroupsPath: string;
  /** null: no seccomp filter (the unconfined baseline of the overhead benchmark). */
  seccomp: OciSeccomp | null;
  pidsLimit: number;
  memoryBytes: number;
  /** Runs on the host after the container's cgroup exists and before the process starts. */
  createRuntimeHook?: CreateRuntimeHook;
  /** A prepared root filesystem (an unpacked worker image), used read-only instead of an
   * empty root of host bind mounts; shared by every container of that image. */
  rootfs?: string;
  /** Host paths mounted at another path than their own (into an image's mount points). */
  binds?: BindMount[];
  /** Share the host's network namespace (the proxy listens there); default an empty one. */
  hostNetwork?: boolean;
  /** Private tmpfs mounts (an operator's server's scratch space), gone with the container. */
  tmpfs?: Array<{ path: string; sizeBytes: number }>;
}

export interface BindMount {
  source: string;
  destination: string;
  writable: boolean;
}

const BIND_RO = ['rbind', 'ro', 'nosuid', 'nodev'];
const BIND_RW = ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'];

/** Kernel interfaces a worker never needs, hidden as runc's defaults hide them. */
const MASKED_PATHS = ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export function ociConfig(spec: ContainerSpec): Record<string, unknown> {
  const mounts: Array<Record<string, unknown>> = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    // runc fills a tmpfs /dev with null, zero, full, random, urandom and tty only.
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'strictatime', 'mode=755', 'size=64k', 'nr_inodes=64'] },
    // Before the binds: a bind below a tmpfs's path (a server's files under /tmp) stays visible.
    ...(spec.tmpfs ?? []).map((t) => ({ destination: t.path, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${t.sizeBytes}`] })),
    ...spec.readOnly.map((p) => ({ destination: p, type: 'bind', source: p, options: BIND_RO })),
    ...spec.writable.map((p) => ({ destination: p, type: 'bind', source: p, options: BIND_RW })),
    ...(spec.binds ?? []).map((b) => ({ destination: b.destination, type: 'bind', source: b.source, options: b.writable ? BIND_RW : BIND_RO })),
  ];
  const config: Record<string, unknown> = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      // umask 007: a socket the process makes is its group's (the proxy's) to connect to, nobody else's.
      user: { uid: spec.uid, gid: spec.gid, additionalGids: [spec.gid], umask: 0o007 },
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      // No capability in any set: root inside would be as powerless as the worker's uid.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
      noNewPrivileges: true,
      oomScoreAdj: 0,
    },
    root: { path: spec.rootfs ?? 'rootfs', readonly: true },
    hostname: spec.hostname,
    mounts,
    linux: {
      // An empty network namespace: a worker serves only its Unix socket. The proxy keeps the
      // host's to listen; its eBPF egress list says where it may connect.
      namespaces: [{ type: 'pid' }, ...(spec.hostNetwork ? [] : [{ type: 'network' }]), { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      cgroupsPath: spec.cgroupsPath,
      resources: {
        pids: { limit: spec.pidsLimit },
        memory: { limit: spec.memoryBytes, swap: spec.memoryBytes },
        devices: [{ allow: false, access: 'rwm' }],
      },
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      ...(spec.seccomp ? { seccomp: spec.seccomp } : {}),
    },
  };
  if (spec.createRuntimeHook) config.hooks = { createRuntime: [spec.createRuntimeHook] };
  return config;
}

/** Writes `<dir>/config.json` and, without a prepared root, `<dir>/rootfs` (empty but for the root symlinks). */
export async function writeBundle(dir: string, spec: ContainerSpec): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (!spec.rootfs) {
    const rootfs = path.join(dir, 'rootfs');
    await mkdir(rootfs, { mode: 0o755 });
    for (const [name, target] of Object.entries(spec.rootSymlinks)) {
      await symlink(target, path.join(rootfs, name));
    }
  }
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(ociConfig(spec), null, 2) + '\n', { mode: 0o600 });
}
