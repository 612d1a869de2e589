// Where the privileged side of fhirguard keeps things, and who owns them. One state
// directory (root's) holds runc's state, the bundles and the workers' socket directories;
// the database lives in a directory of its own, because that directory is mounted into
// every worker (read-write for tiers that write) and must not expose anything else.

import { existsSync, realpathSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/fhirguard';

export function defaultDbPath(stateDir: string): string {
  return path.join(stateDir, 'data', 'fhirguard.db');
}

export interface StateLayout {
  stateDir: string;
  /** runc --root: container state, fhirguard's own. */
  runcRoot: string;
  bundles: string;
  /** Per worker socket directories: <sockets>/<tier>/<id>/. */
  sockets: string;
}

export function stateLayout(stateDir: string): StateLayout {
  return {
    stateDir,
    runcRoot: path.join(stateDir, 'runc'),
    bundles: path.join(stateDir, 'bundles'),
    sockets: path.join(stateDir, 'run'),
  };
}

export interface WorkerIdentity {
  uid: number;
  gid: number;
}

/** `uid:gid` → identity; the default is nobody:nogroup (65534), never root. */
export function parseIdentity(text: string | undefined): WorkerIdentity {
  const t = text ?? '65534:65534';
  const m = /^(\d+):(\d+)$/.exec(t.trim());
  if (!m) throw new Error(`worker user '${t}' is not uid:gid (numbers)`);
  const id = { uid: Number(m[1]), gid: Number(m[2]) };
  if (id.uid === 0) throw new Error('workers never run as root (uid 0): choose another worker user');
  return id;
}

/** Refuses a data directory that would expose fhirguard's own state to workers. */
export function checkDataDir(dataDir: string, layout: StateLayout): void {
  const real = (p: string): string => (existsSync(p) ? realpathSync(p) : path.resolve(p));
  const data = real(dataDir);
  for (const p of [layout.stateDir, layout.runcRoot, layout.bundles, layout.sockets]) {
    const q = real(p);
    if (q === data || q.startsWith(`${data}/`)) {
      throw new Error(`the database directory ${data} contains ${q}: give the database a directory of its own (workers mount it)`);
    }
  }
}

/**
 * Creates the database directory when missing and, with `id` (the agent is root), makes it
 * and the database files belong to the worker identity, so every tier's workers can open the
 * database as a non-root user: read tiers read it through a read-only mount, write tiers
 * write it. Returns what it changed.
 */
export async function prepareDataDir(dataDir: string, id: WorkerIdentity | null): Promise<string[]> {
  const changed: string[] = [];
  if (!existsSync(dataDir)) {
    await mkdir(dataDir, { recursive: true, mode: 0o750 });
    changed.push(`created ${dataDir}`);
  }
  if (!id) return changed;
  const paths = [dataDir, ...(await readdir(dataDir)).map((f) => path.join(dataDir, f)).filter((p) => statSync(p).isFile())];
  for (const p of paths) {
    const st = statSync(p);
    if (st.uid !== id.uid || st.gid !== id.gid) {
      await chown(p, id.uid, id.gid);
      changed.push(`${p}: owner ${st.uid}:${st.gid} -> ${id.uid}:${id.gid}`);
    }
  }
  return changed;
}

/**
 * For workers that run as plain processes (degraded mode): the first ancestor of `p` the
 * identity cannot search, or null. Containers do not need this (their mounts skip the
 * host's parent directories).
 */
export function unsearchableAncestor(p: string, id: WorkerIdentity): string | null {
  let dir = path.dirname(path.resolve(p));
  const chain: string[] = [];
  for (;;) {
    chain.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of chain) {
    const st = statSync(d);
    const bit = st.uid === id.uid ? 0o100 : st.gid === id.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return d;
  }
  return null;
}

/**
 * A fresh socket directory for one worker: owned by the worker's uid (it creates its socket
 * there) and group (the proxy, in that group, connects), 0750; the parents root's, 0755.
 * `id` null (the agent is not root): the directory stays the agent user's.
 */
export async function prepareSocketDir(dir: string, id: WorkerIdentity | null): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  // A socket left by a killed worker goes too: the read tier's profile forbids unlink, so
  // the worker could not replace it itself.
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o750 });
  if (id) await chown(dir, id.uid, id.gid);
  await chmod(dir, 0o750);
}

/**
 * Where a root-run fhirguard stages what its unprivileged processes run (src/install/stage.ts):
 * root's, readable by every identity, whatever the permissions above the checkout.
 */
export function stagedInstallDir(stateDir: string): string {
  return path.join(stateDir, 'install');
}
