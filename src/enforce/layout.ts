// Where the privileged side of fhirguard keeps things, and who owns them. One state
// directory (root's) holds runc's state, the bundles and the workers' socket directories;
// the database lives in a directory of its own, because that directory is mounted into
// every worker (read-write for tiers that write) and must not expose anything else.

import { existsSync, realpathSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Identities } from './identities';

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
 * Creates the database directory when missing and, with `ids` (the agent is root), gives it
 * to the writing tiers' identity and the read tiers' group, 02750, and the database files
 * 0640: writers write, readers read (the read-only mounts aside), nobody else enters, the
 * proxy included. The setgid bit gives files SQLite creates there (the journal) the readers'
 * group too. Returns what it changed.
 */
export async function prepareDataDir(dataDir: string, ids: Pick<Identities, 'reader' | 'writer'> | null): Promise<string[]> {
  const changed: string[] = [];
  if (!existsSync(dataDir)) {
    await mkdir(dataDir, { recursive: true, mode: 0o750 });
    changed.push(`created ${dataDir}`);
  }
  if (!ids) return changed;
  const owner = { uid: ids.writer.uid, gid: ids.reader.gid };
  const files = (await readdir(dataDir)).map((f) => path.join(dataDir, f)).filter((p) => statSync(p).isFile());
  for (const [p, mode] of [[dataDir, 0o2750] as const, ...files.map((f) => [f, 0o640] as const)]) {
    const st = statSync(p);
    if (st.uid !== owner.uid || st.gid !== owner.gid) {
      await chown(p, owner.uid, owner.gid);
      changed.push(`${p}: owner ${st.uid}:${st.gid} -> ${owner.uid}:${owner.gid}`);
    }
    if ((st.mode & 0o7777) !== mode) {
      await chmod(p, mode);
      changed.push(`${p}: mode ${(st.mode & 0o7777).toString(8)} -> ${mode.toString(8)}`);
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
 * there) and the proxy's group (the proxy connects; nobody else, other tiers' workers
 * included, enters), 02750, so the socket gets the proxy's group; the parents root's, 0755.
 * `owner` null (the agent is not root): the directory stays the agent user's.
 */
export async function prepareSocketDir(dir: string, owner: WorkerIdentity | null): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o755 });
  // A socket left by a killed worker goes too: the read tier's profile forbids unlink, so
  // the worker could not replace it itself.
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { mode: 0o750 });
  if (!owner) return;
  await chown(dir, owner.uid, owner.gid);
  await chmod(dir, 0o2750);
}

/** A worker's socket directory owner: the worker's uid, the proxy's group. */
export function socketDirOwner(ids: Identities, readOnly: boolean): WorkerIdentity {
  return { uid: (readOnly ? ids.reader : ids.writer).uid, gid: ids.proxy.gid };
}

/**
 * Where a root-run fhirguard stages what its unprivileged processes run (src/install/stage.ts):
 * root's, readable by every identity, whatever the permissions above the checkout.
 */
export function stagedInstallDir(stateDir: string): string {
  return path.join(stateDir, 'install');
}
