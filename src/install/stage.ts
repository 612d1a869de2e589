// The staged install: what unprivileged processes (the proxy, plain workers, the crashing
// writer of `record`, the app mounted into worker containers) run, staged by root into
// <state-dir>/install. A checkout may sit where those processes cannot reach it (root's home
// is 0700), and it is writable by whoever owns it; the staged copy is root's (directories
// 0755, files readable by all, writable by root alone) and holds exactly the install manifest
// (manifest.ts), which is also what the install digest covers: `up` signs the staged copy
// and the agent checks it.
//
// A file that is root's, readable by all and writable by nobody else is staged as a hard
// link to the checkout's file (when both are on one filesystem): staging a checkout root
// owns costs a link per file, not 160 MB of copies, and it keeps what `up` documents: a file
// changed in place while the system runs changes what the next worker start would run, which
// the install digest then refuses. Any other file is copied (mode 0644 or 0755, root's).
// A second start redoes only what changed: a link to the same file, or a copy with the same
// size, modification time (copied along), mode and owner, is left alone; anything staged
// that the manifest no longer lists is removed. Each new file is made beside its place and
// renamed over it, so a process reading the old file keeps reading the old file.

import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  chmodSync,
  chownSync,
  symlinkSync,
  utimesSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';
import { installRoot } from './root';
import { stagedInstallDir } from '../enforce/layout';
import { installManifest } from './manifest';

export interface StageResult {
  /** The staged install root. */
  root: string;
  /** Files and symlinks the manifest lists. */
  entries: number;
  /** Of them, linked or copied this time (the rest were staged already). */
  written: number;
  /** Staged paths removed because the manifest no longer lists them. */
  removed: number;
}

interface Entry {
  kind: 'dir' | 'file' | 'symlink';
  st: Stats;
}

const DIR_MODE = 0o755;
const modeOf = (st: Stats): number => ((st.mode & 0o111) !== 0 ? 0o755 : 0o644);

/** Every directory, file and symlink of the manifest, by path relative to the install. */
function listManifest(install: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const root of installManifest(install)) {
    // The directories above a root (dist/ of dist/src) exist in the copy too.
    const parts = root.rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!out.has(dir)) out.set(dir, { kind: 'dir', st: lstatSync(path.join(install, dir)) });
    }
    const visit = (rel: string): void => {
      const st = lstatSync(path.join(install, rel));
      if (st.isSymbolicLink()) out.set(rel, { kind: 'symlink', st });
      else if (st.isFile()) out.set(rel, { kind: 'file', st });
      else if (st.isDirectory()) {
        out.set(rel, { kind: 'dir', st });
        for (const e of readdirSync(path.join(install, rel), { withFileTypes: true })) {
          const child = `${rel}/${e.name}`;
          if (root.skip?.(child.slice(root.rel.length + 1), e.isDirectory())) continue;
          visit(child);
        }
      }
    };
    visit(root.rel);
  }
  return out;
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Makes `p` a directory of ours, mode 0755 (replacing whatever else is there). */
function ensureDir(p: string, uid: number, gid: number): void {
  let st = lstatOrNull(p);
  if (st && !st.isDirectory()) {
    rmSync(p, { force: true });
    st = null;
  }
  if (!st) {
    mkdirSync(p, { mode: DIR_MODE });
    st = lstatSync(p);
  }
  if (st.uid !== uid || st.gid !== gid) chownSync(p, uid, gid);
  if ((st.mode & 0o7777) !== DIR_MODE) chmodSync(p, DIR_MODE);
}

/** A file that may be shared with the staged install as it is: root's, readable by every
 * identity, writable by root alone, neither setuid nor setgid. */
function linkable(st: Stats): boolean {
  return st.uid === 0 && (st.mode & 0o6022) === 0 && (st.mode & 0o004) !== 0;
}

/** Makes `at` a hard link to `source` (false when they are on different filesystems). */
function linkInto(source: string, at: string, tmp: string): boolean {
  rmSync(tmp, { force: true });
  try {
    linkSync(source, tmp);
  } catch (err) {
    if (['EXDEV', 'EPERM', 'EMLINK', 'EROFS'].includes((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
  renameSync(tmp, at);
  return true;
}

function sameFile(staged: Stats | null, source: Stats, uid: number): boolean {
  return (
    staged !== null &&
    staged.isFile() &&
    staged.nlink === 1 &&
    staged.size === source.size &&
    Math.abs(staged.mtimeMs - source.mtimeMs) < 1 &&
    (staged.mode & 0o7777) === modeOf(source) &&
    staged.uid === uid
  );
}

/**
 * Copies the manifest of `source` into `dest` (created when missing; its parent must exist),
 * root's when this process is root. `source` and `dest` the same directory (a process run
 * from the staged install): nothing to do.
 */
export function stageInstall(source: string, dest: string): StageResult {
  const result: StageResult = { root: dest, entries: 0, written: 0, removed: 0 };
  if (existsSync(dest) && realpathSync(dest) === realpathSync(source)) return result;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const wanted = listManifest(source);
  ensureDir(dest, uid, gid);
  const tmp = (p: string): string => `${p}.fhirguard-stage-${process.pid}`;
  // Sorted: a directory comes before what it holds.
  for (const rel of [...wanted.keys()].sort()) {
    const e = wanted.get(rel)!;
    const at = path.join(dest, rel);
    if (e.kind === 'dir') {
      ensureDir(at, uid, gid);
      continue;
    }
    result.entries++;
    const staged = lstatOrNull(at);
    if (staged?.isDirectory()) rmSync(at, { recursive: true, force: true });
    if (e.kind === 'symlink') {
      const target = readlinkSync(path.join(source, rel));
      if (staged?.isSymbolicLink() && readlinkSync(at) === target && staged.uid === uid) continue;
      rmSync(tmp(at), { force: true });
      symlinkSync(target, tmp(at));
      renameSync(tmp(at), at);
    } else {
      const from = path.join(source, rel);
      const share = uid === 0 && linkable(e.st);
      if (share && staged?.ino === e.st.ino && staged.dev === e.st.dev) continue;
      if (!share && sameFile(staged, e.st, uid)) continue;
      if (share && linkInto(from, at, tmp(at))) {
        result.written++;
        continue;
      }
      copyFileSync(from, tmp(at));
      chmodSync(tmp(at), modeOf(e.st));
      utimesSync(tmp(at), e.st.atime, e.st.mtime);
      renameSync(tmp(at), at);
    }
    result.written++;
  }
  // What the manifest no longer lists goes (a copy cut short included): the staged tree is
  // the manifest, no more.
  const prune = (rel: string): void => {
    const dir = rel ? path.join(dest, rel) : dest;
    for (const name of readdirSync(dir)) {
      const child = rel ? `${rel}/${name}` : name;
      const e = wanted.get(child);
      const st = lstatSync(path.join(dir, name));
      if (!e) {
        rmSync(path.join(dir, name), { recursive: true, force: true });
        result.removed++;
      } else if (e.kind === 'dir' && st.isDirectory()) prune(child);
    }
  };
  prune('');
  return result;
}

/**
 * The install unprivileged processes run from. As root: this install staged into
 * <state-dir>/install (refreshed now), which the worker identity can read wherever the
 * checkout is. Not root: everything runs as this user, from this install.
 */
export function runnableInstall(stateDir: string): string {
  const install = installRoot();
  if (process.getuid?.() !== 0) return install;
  mkdirSync(stateDir, { recursive: true });
  return stageInstall(install, stagedInstallDir(stateDir)).root;
}
