// Digests of what a statement binds. Files are hashed from the bytes read once (the caller
// then uses those same bytes). The host install, the subject when workers run from it rather
// than from an image, is hashed as a tree: one line per file or symlink under what a worker
// container mounts of it (dist/, node_modules/, bin/, package.json) plus the node binary the
// worker executes, sorted by path; its digest is the sha256 of that listing. Files whose
// inode, size, mtime and ctime did not change since the last start are not read again.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What of the install a worker container sees (src/enforce/host-files.ts mounts the same). */
export const INSTALL_PARTS = ['dist', 'node_modules', 'bin', 'package.json'] as const;
/** Caches tools write under node_modules; no worker reads them. */
const SKIPPED = new Set(['node_modules/.cache']);

const LARGE = 16 << 20;

async function hashFile(file: string, size: number): Promise<string> {
  if (size < LARGE) return sha256(await readFile(file));
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface Cached {
  key: string;
  line: string;
}

export interface TreeDigest {
  sha256: string;
  files: number;
  /** Files read this time (the rest came from the stat cache). */
  hashed: number;
  ms: number;
}

export class InstallDigest {
  private readonly cache = new Map<string, Cached>();
  private running: Promise<TreeDigest> | null = null;

  constructor(
    readonly install: string,
    /** The node binary workers run (default: this process's). */
    readonly node: string = process.execPath,
  ) {}

  /** One computation at a time; concurrent callers share it. */
  digest(): Promise<TreeDigest> {
    if (!this.running) this.running = this.compute().finally(() => (this.running = null));
    return this.running;
  }

  private async entry(abs: string, name: string): Promise<string | null> {
    const st = await lstat(abs, { bigint: true });
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
    const hit = this.cache.get(abs);
    if (hit && hit.key === key) return hit.line;
    let line: string;
    if (st.isSymbolicLink()) line = `${sha256(await readlink(abs))} l ${name}`;
    else if (st.isFile()) line = `${await hashFile(abs, Number(st.size))} ${(st.mode & 0o111n) !== 0n ? 'x' : 'f'} ${name}`;
    else return null;
    this.hashedNow++;
    this.cache.set(abs, { key, line });
    return line;
  }

  private hashedNow = 0;

  private async walk(rel: string, out: string[]): Promise<void> {
    if (SKIPPED.has(rel)) return;
    const abs = path.join(this.install, rel);
    let st;
    try {
      st = await lstat(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!st.isDirectory()) {
      const line = await this.entry(abs, rel);
      if (line) out.push(line);
      return;
    }
    const names = (await readdir(abs)).sort();
    const files: string[] = [];
    for (const n of names) {
      const child = path.posix.join(rel, n);
      if (SKIPPED.has(child)) continue;
      const s = await lstat(path.join(abs, n));
      if (s.isDirectory()) await this.walk(child, out);
      else files.push(child);
    }
    // Files of one directory are read in parallel; the listing is sorted afterwards.
    const lines = await Promise.all(files.map((f) => this.entry(path.join(this.install, f), f)));
    for (const l of lines) if (l) out.push(l);
  }

  private async compute(): Promise<TreeDigest> {
    const t0 = performance.now();
    this.hashedNow = 0;
    const lines: string[] = [];
    const node = await realpath(this.node);
    const nodeLine = await this.entry(node, '<node>');
    if (nodeLine) lines.push(nodeLine);
    for (const part of INSTALL_PARTS) await this.walk(part, lines);
    lines.sort((a, b) => (a.slice(67) < b.slice(67) ? -1 : a.slice(67) > b.slice(67) ? 1 : 0));
    return { sha256: sha256(lines.join('\n') + '\n'), files: lines.length, hashed: this.hashedNow, ms: Math.round(performance.now() - t0) };
  }
}
