// The confinement of one tier, as a container spec: the same for the tier's workers and for
// `fhirguard exec --tier`, so what operators test with exec is what workers get.

import { existsSync } from 'node:fs';
import type { ContainerSpec, CreateRuntimeHook } from './oci-bundle';
import { hostFiles, minimalCover, programFiles, rootSymlinks } from './host-files';
import { ociSeccomp, type SeccompMode, type SeccompProfile } from './seccomp';

export interface TierConfinement {
  tier: string;
  /** The data directory is mounted read-only (read tiers). */
  readOnly: boolean;
  /** The tier's seccomp profile; null runs without a filter (benchmark baseline only). */
  seccomp: SeccompProfile | null;
  seccompMode: SeccompMode;
}

export interface ContainerLayout {
  /** fhirguard install root (dist/, node_modules/, bin/). */
  install: string;
  /** Directory holding the database. */
  dataDir: string;
  /** Directory the process's Unix socket lives in (read-write). */
  socketDir: string;
  uid: number;
  gid: number;
  /** More host paths to mount read-only at their own path (e.g. exec's command). */
  extraReadOnly?: string[];
  pidsLimit?: number;
  memoryBytes?: number;
}

export const DEFAULT_PIDS_LIMIT = 128;
export const DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024;

/** runc's cgroupsPath of a container: absolute, so it is the same path in every hierarchy. */
export function cgroupsPathOf(tier: string, id: string): string {
  return `/fhirguard/${tier}/${id}`;
}

export function tierContainerSpec(
  t: TierConfinement,
  layout: ContainerLayout,
  id: string,
  process: { args: string[]; env?: string[]; cwd?: string },
  hook?: CreateRuntimeHook,
  /** The cgroup's last component; default the container id. */
  cgroupName = id,
): ContainerSpec {
  const host = hostFiles(layout.install);
  const writable = t.readOnly ? [layout.socketDir] : [layout.socketDir, layout.dataDir];
  const readOnly = minimalCover([...host.readOnly, ...(layout.extraReadOnly ?? []), ...(t.readOnly ? [layout.dataDir] : [])]).filter((p) => !writable.includes(p));
  return {
    hostname: id,
    args: process.args,
    env: ['PATH=/usr/bin:/bin', 'HOME=/nonexistent', ...(process.env ?? [])],
    cwd: process.cwd ?? '/',
    uid: layout.uid,
    gid: layout.gid,
    readOnly,
    writable,
    rootSymlinks: host.rootSymlinks,
    cgroupsPath: cgroupsPathOf(t.tier, cgroupName),
    seccomp: t.seccomp ? ociSeccomp(t.seccomp, t.seccompMode) : null,
    pidsLimit: layout.pidsLimit ?? DEFAULT_PIDS_LIMIT,
    memoryBytes: layout.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    ...(hook ? { createRuntimeHook: hook } : {}),
  };
}

/** The profile name, cgroup and container prefix of the front door: no tier may be called so. */
export const FRONT_DOOR = 'proxy';

/** Host files a name lookup reads (upstreams named by host name); absent ones are skipped. */
const RESOLVER_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/gai.conf'];

export interface FrontDoorLayout {
  install: string;
  uid: number;
  gid: number;
  /** Read-only: the policy copy's directory, the workers' socket tree, the agent's API socket. */
  readOnly: string[];
  pidsLimit?: number;
  memoryBytes?: number;
}

/**
 * The proxy's confinement: the same root of read-only host files as a worker's, plus what it
 * reads and connects to (read-only: connecting to a Unix socket needs no write mount), nothing
 * writable, and the host's network namespace, where it listens; its eBPF egress allow-list
 * says where it may connect.
 */
export function frontDoorContainerSpec(
  t: { seccomp: SeccompProfile | null; seccompMode: SeccompMode },
  layout: FrontDoorLayout,
  id: string,
  process: { args: string[]; env?: string[] },
  /** The cgroup's last component; default the container id. */
  cgroupName = id,
): ContainerSpec {
  const host = hostFiles(layout.install);
  return {
    hostname: id,
    args: process.args,
    env: ['PATH=/usr/bin:/bin', 'HOME=/nonexistent', ...(process.env ?? [])],
    cwd: '/',
    uid: layout.uid,
    gid: layout.gid,
    readOnly: minimalCover([...host.readOnly, ...RESOLVER_FILES.filter((f) => existsSync(f)), ...layout.readOnly]),
    writable: [],
    rootSymlinks: host.rootSymlinks,
    cgroupsPath: cgroupsPathOf(FRONT_DOOR, cgroupName),
    seccomp: t.seccomp ? ociSeccomp(t.seccomp, t.seccompMode) : null,
    pidsLimit: layout.pidsLimit ?? DEFAULT_PIDS_LIMIT,
    memoryBytes: layout.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    hostNetwork: true,
  };
}

/** An operator's server as one tier's worker (policy `server:`), resolved for one container. */
export interface ServerLayout {
  /** Program and arguments, `${socket}` already substituted. */
  args: string[];
  env: string[];
  /** Host paths the server reads (its runtime, its jar) and writes (state; write tiers only). */
  readOnly: string[];
  state: string[];
  /** Directory of the Unix socket the server listens on (read-write). */
  socketDir: string;
  scratchBytes: number;
  /** Keep the host's network namespace: the server connects out (its eBPF egress list says where). */
  hostNetwork: boolean;
  uid: number;
  gid: number;
  pidsLimit: number;
  memoryBytes: number;
}

/**
 * An operator's server under its tier's confinement: a root of read-only mounts of exactly
 * what its policy names plus its program's libraries (nothing of fhirguard's install), its
 * socket directory and, for tiers that write, its state directories writable, an optional
 * private /tmp, and either an empty network namespace or the host's with an egress list.
 */
export function serverContainerSpec(t: TierConfinement, s: ServerLayout, id: string, cgroupName = id): ContainerSpec {
  const prog = programFiles(s.args[0]);
  const writable = t.readOnly ? [s.socketDir] : [s.socketDir, ...s.state];
  const readOnly = minimalCover([...prog.readOnly, ...s.readOnly]).filter((p) => !writable.includes(p));
  return {
    hostname: id,
    args: [prog.program, ...s.args.slice(1)],
    env: ['PATH=/usr/bin:/bin', 'HOME=/nonexistent', ...s.env],
    cwd: '/',
    uid: s.uid,
    gid: s.gid,
    readOnly,
    writable,
    rootSymlinks: rootSymlinks(),
    cgroupsPath: cgroupsPathOf(t.tier, cgroupName),
    seccomp: t.seccomp ? ociSeccomp(t.seccomp, t.seccompMode) : null,
    pidsLimit: s.pidsLimit,
    memoryBytes: s.memoryBytes,
    ...(s.scratchBytes > 0 ? { tmpfs: [{ path: '/tmp', sizeBytes: s.scratchBytes }] } : {}),
    ...(s.hostNetwork ? { hostNetwork: true } : {}),
  };
}
