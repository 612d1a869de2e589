// Digests of what a statement binds. Files are hashed from the bytes read once (the caller
// then uses those same bytes). The host install, the subject when workers run from it rather
// than from an image, is hashed as a tree: one line per file or symlink of its code (the code
// roots of src/install/manifest.ts: bin/, package.json, dist/src/, the core FHIR model, the
// production packages of node_modules) plus the node binary the worker executes, sorted by
// path; its digest is the sha256 of that listing. A checkout and its staged copy
// (src/install/stage.ts) list the same files, so their digests are equal. Files whose
// inode, size, mtime, ctime and mode did not change since the last start are not read again
// (a ctime cannot be set back without changing the clock). With a cache file (root's state
// directory), that stat cache outlives the process: `fhirguard up` signs and its agent then
// checks without reading the install twice, and later starts read only what changed.

import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { installManifest, type ManifestRoot } from '../install/manifest';

export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const LARGE = 16 << 20;
/** Files read at once when many changed (the first digest reads the whole install). */
const PARALLEL = 16;

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

/** A file or symlink found by the walk, with the stat its cache entry is keyed on. */
interface Found {
  abs: string;
  name: string;
  st: BigIntStats;
}

const keyOf = (st: BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;

export class InstallDigest {
  private readonly cache = new Map<string, Cached>();
  private running: Promise<TreeDigest> | null = null;

  private loaded = false;

  constructor(
    readonly install: string,
    /** The node binary workers run (default: this process's). */
    readonly node: string = process.execPath,
    /** Where the stat cache is kept between processes (a directory only its owner can write). */
    readonly cacheFile?: string,
  ) {}

  /** The cache file's entries, when it is ours and nobody else could have written it. */
  private load(): void {
    this.loaded = true;
    if (!this.cacheFile) return;
    try {
      const st = statSync(this.cacheFile);
      const dir = statSync(path.dirname(this.cacheFile));
      const uid = process.getuid?.() ?? st.uid;
      if (st.uid !== uid || dir.uid !== uid || (st.mode & 0o022) !== 0 || (dir.mode & 0o022) !== 0) return;
      const saved = JSON.parse(readFileSync(this.cacheFile, 'utf8')) as { version?: number; install?: string; entries?: Array<[string, string, string]> };
      if (saved.version !== 1 || saved.install !== this.install || !Array.isArray(saved.entries)) return;
      for (const [abs, key, line] of saved.entries) if (typeof abs === 'string' && typeof key === 'string' && /^[0-9a-f]{64} [lfx] /.test(line)) this.cache.set(abs, { key, line });
    } catch {
      // no cache yet, or unreadable: every file is read
    }
  }

  private save(): void {
    if (!this.cacheFile) return;
    try {
      mkdirSync(path.dirname(this.cacheFile), { recursive: true, mode: 0o700 });
      const tmp = `${this.cacheFile}.${process.pid}.tmp`;
      const entries = [...this.cache].map(([abs, c]) => [abs, c.key, c.line]);
      writeFileSync(tmp, JSON.stringify({ version: 1, install: this.install, entries }), { mode: 0o600 });
      renameSync(tmp, this.cacheFile);
    } catch {
      // a cache that cannot be written costs time at the next start, nothing else
    }
  }

  /** One computation at a time; concurrent callers share it. */
  digest(): Promise<TreeDigest> {
    if (!this.running) this.running = this.compute().finally(() => (this.running = null));
    return this.running;
  }

  /** The listing line of a file or symlink: its digest, its kind, its path. */
  private async line(f: Found): Promise<string> {
    if (f.st.isSymbolicLink()) return `${sha256(await readlink(f.abs))} l ${f.name}`;
    return `${await hashFile(f.abs, Number(f.st.size))} ${(f.st.mode & 0o111n) !== 0n ? 'x' : 'f'} ${f.name}`;
  }

  /**
   * Every file and symlink under `rel` (other kinds are left out), but what the root's `skip`
   * leaves out. Stats are synchronous (an install has thousands of files: one thread-pool
   * round trip each would take seconds), one directory at a time with the event loop let
   * through between directories.
   */
  private async walk(root: ManifestRoot, rel: string, out: Found[]): Promise<void> {
    const abs = path.join(this.install, rel);
    let st: BigIntStats;
    try {
      st = lstatSync(abs, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!st.isDirectory()) {
      if (st.isFile() || st.isSymbolicLink()) out.push({ abs, name: rel, st });
      return;
    }
    const dirs: string[] = [];
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const child = path.posix.join(rel, e.name);
      if (root.skip?.(child.slice(root.rel.length + 1), e.isDirectory())) continue;
      if (e.isDirectory()) dirs.push(child);
      else if (e.isFile() || e.isSymbolicLink()) {
        const p = path.join(abs, e.name);
        out.push({ abs: p, name: child, st: lstatSync(p, { bigint: true }) });
      }
    }
    await yieldToLoop();
    for (const d of dirs) await this.walk(root, d, out);
  }

  private async compute(): Promise<TreeDigest> {
    const t0 = performance.now();
    if (!this.loaded) this.load();
    const found: Found[] = [];
    const node = await realpath(this.node);
    found.push({ abs: node, name: '<node>', st: lstatSync(node, { bigint: true }) });
    for (const root of installManifest(this.install)) if (root.code) await this.walk(root, root.rel, found);
    // Unchanged files (same inode, size, mtime, ctime, mode) keep their line; the rest are read.
    const lines = new Array<string>(found.length);
    const stale: number[] = [];
    found.forEach((f, i) => {
      const hit = this.cache.get(f.abs);
      if (hit && hit.key === keyOf(f.st)) lines[i] = hit.line;
      else stale.push(i);
    });
    let next = 0;
    const reader = async (): Promise<void> => {
      while (next < stale.length) {
        const i = stale[next++];
        const f = found[i];
        lines[i] = await this.line(f);
        this.cache.set(f.abs, { key: keyOf(f.st), line: lines[i] });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, stale.length) }, reader));
    // Entries of files that are gone are dropped; the cache is written when anything changed.
    if (stale.length || this.cache.size !== found.length) {
      const live = new Set(found.map((f) => f.abs));
      for (const abs of [...this.cache.keys()]) if (!live.has(abs)) this.cache.delete(abs);
      this.save();
    }
    // Sorted by path (a line is <64 hex> <kind> <path>).
    const byPath = (l: string): string => l.slice(67);
    lines.sort((a, b) => (byPath(a) < byPath(b) ? -1 : byPath(a) > byPath(b) ? 1 : 0));
    return { sha256: sha256(lines.join('\n') + '\n'), files: lines.length, hashed: stale.length, ms: Math.round(performance.now() - t0) };
  }
}
