// fhirguard's one tar reader: image layers (the SBOM's package manifests) and FHIR packages
// (.tgz conformance resources for custom profiles). Parsing is node-tar's (npm's own tar
// implementation): header checksums, PAX and GNU long names and links, gzip detected by itself.
// fhirguard adds what an archive from someone else must not get past: a path that is
// absolute or climbs out (`..`), a link whose target leaves the archive, device files and
// fifos, entries node-tar would skip without a word (sparse files, unknown types, extended
// headers too large to read), and sizes past the caller's limits (one entry, the sum, the number
// of entries, the contents kept in memory). Every refusal names the entry. Only the entries a
// caller wants are kept in memory.

import { Parser, type ReadEntry } from 'tar';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface TarEntryHeader {
  /** Relative, normalised, without a leading './' or a trailing '/'. */
  path: string;
  type: TarEntryType;
  mode: number;
  size: number;
  /** Link target (symlinks: relative to the link's folder; hard links: to the archive root). */
  target?: string;
}

export interface TarLimits {
  /** Largest entry, in bytes. */
  maxEntryBytes: number;
  /** Largest sum of all entries' sizes. */
  maxTotalBytes: number;
  maxEntries: number;
  /** Largest sum of the contents kept in memory (the files `want` picks); default maxTotalBytes. */
  maxKeptBytes?: number;
  /**
   * The archive is a root filesystem (an image layer): an absolute symbolic link points
   * inside that root, as it will inside the container, and is accepted. Links are then checked
   * each by itself: the root is where every one of them resolves (umoci unpacks it confined
   * to the root), so a link cannot take another out of it.
   */
  rootfs?: boolean;
}

export class TarError extends Error {
  constructor(
    readonly entry: string | undefined,
    message: string,
  ) {
    super(entry === undefined ? message : `${entry}: ${message}`);
  }
}

const TYPES: ReadonlyMap<string, TarEntryType> = new Map([
  ['File', 'file'],
  ['OldFile', 'file'],
  ['ContiguousFile', 'file'],
  ['Directory', 'dir'],
  ['SymbolicLink', 'symlink'],
  ['Link', 'hardlink'],
]);

/** A path inside the archive, or a TarError: never absolute, never climbing out. */
function safePath(raw: string, entry: string, what: string): string {
  if (raw.includes('\0')) throw new TarError(entry, `${what} contains a NUL byte`);
  if (raw.startsWith('/') || /^[A-Za-z]:[\\/]/.test(raw)) throw new TarError(entry, `${what} is absolute`);
  const normal = posix.normalize(raw.replace(/^(\.\/)+/, '')).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../') || raw.split(/[\\/]/).includes('..')) throw new TarError(entry, `${what} climbs out of the archive ('..')`);
  return normal === '.' ? '' : normal;
}

/** What node-tar reads of one extended (PAX) or GNU long-name header at most: its own default. */
const MAX_META_BYTES = 1024 * 1024;
const MAX_LINK_HOPS = 40;

interface Tally {
  entries: number;
  bytes: number;
  kept: number;
  /** The archive's symbolic links so far (path to target), to resolve paths through them. */
  links: Map<string, string>;
}

/**
 * Where `p` (relative to the archive root, not normalised: `a/link/..` is not `a`) lands once
 * the archive's own symbolic links on the way are followed (`links`: each link's path and its
 * target as written, relative to the link's folder): a TarError when it climbs out or loops.
 */
function resolveInside(links: ReadonlyMap<string, string>, p: string, entry: string, what: string): string {
  let rest = p.split('/').filter((s) => s && s !== '.');
  const done: string[] = [];
  let hops = 0;
  while (rest.length) {
    const part = rest.shift()!;
    if (part === '..') {
      if (!done.length) throw new TarError(entry, `${what} climbs out of the archive ('..')`);
      done.pop();
      continue;
    }
    done.push(part);
    const target = links.get(done.join('/'));
    if (target === undefined) continue;
    if (++hops > MAX_LINK_HOPS) throw new TarError(entry, `${what} has too many levels of symbolic links`);
    done.pop();
    rest = [...target.split('/').filter((s) => s && s !== '.'), ...rest];
  }
  return done.join('/');
}

/** The first folder above `path` that is one of the archive's symbolic links. */
function linkAbove(links: ReadonlyMap<string, string>, path: string): string | undefined {
  if (!links.size) return undefined;
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    if (links.has(dir)) return dir;
  }
  return undefined;
}

/** Checks one entry's header against the rules and the limits; returns what callers see. */
function check(e: ReadEntry, limits: TarLimits, tally: Tally): TarEntryHeader {
  const name = String(e.path);
  const type = TYPES.get(e.type);
  if (type === undefined) throw new TarError(name, `entry type ${e.type} is not accepted (only files, folders and links inside the archive)`);
  const path = safePath(name, name, 'the path');
  const size = e.size ?? 0;
  if (++tally.entries > limits.maxEntries) throw new TarError(name, `more than ${limits.maxEntries} entries`);
  if (size > limits.maxEntryBytes) throw new TarError(name, `${size} bytes is more than the ${limits.maxEntryBytes} an entry may have`);
  tally.bytes += size;
  if (tally.bytes > limits.maxTotalBytes) throw new TarError(name, `the archive holds more than ${limits.maxTotalBytes} bytes`);
  const header: TarEntryHeader = { path, type, mode: e.mode ?? 0, size };
  // Outside a root filesystem, nothing may lie beneath a link: written out, it would land
  // wherever the link points (node-tar's own extraction refuses the same).
  const through = limits.rootfs ? undefined : linkAbove(tally.links, path);
  if (through !== undefined) throw new TarError(name, `the path goes through the symbolic link ${through}`);
  if (type === 'symlink' || type === 'hardlink') {
    const linkpath = String(e.linkpath ?? '');
    const what = `the ${type === 'symlink' ? 'symbolic' : 'hard'} link's target '${linkpath}'`;
    if (type === 'symlink') {
      if (linkpath.startsWith('/')) {
        if (!limits.rootfs) throw new TarError(name, `${what} is absolute`);
      } else {
        safePath(posix.join(posix.dirname(path), linkpath), name, what);
        if (!limits.rootfs) resolveInside(tally.links, `${posix.dirname(path)}/${linkpath}`, name, what);
      }
      if (!limits.rootfs) tally.links.set(path, linkpath);
    } else {
      safePath(linkpath, name, what);
      if (!limits.rootfs) resolveInside(tally.links, linkpath, name, what);
    }
    header.target = linkpath;
  }
  return header;
}

export type TarRead = TarEntryHeader & { data?: Buffer };

/** node-tar's complaint about the archive, as a refusal naming the entry it concerns. */
function refusalOf(err: Error & { header?: { path?: unknown }; entry?: { path?: unknown } }): TarError {
  const name = err.entry?.path ?? err.header?.path;
  const entry = typeof name === 'string' && name ? name : undefined;
  if (/checksum failure/.test(err.message)) return new TarError(entry, "the header's checksum is wrong (a damaged or forged archive)");
  if (/Truncated input/.test(err.message)) return new TarError(entry, 'the archive ends inside this entry (truncated)');
  return new TarError(entry, `not a sound tar archive: ${err.message}`);
}

/** An entry node-tar skips without a word: refused, so that nothing in an archive goes unread. */
function refusalOfIgnored(e: ReadEntry): TarError {
  const name = String(e.path);
  if (e.meta) return new TarError(name, `an extended header of ${e.size} bytes is more than the ${MAX_META_BYTES} fhirguard reads (the name it carries would be lost)`);
  return new TarError(name, `entry type ${e.type} is not accepted (only files, folders and links inside the archive)`);
}

/**
 * A parser that collects headers (and wanted files' contents). The first refusal stops it and
 * is handed to `fail` once; `failed()` returns it.
 */
function collector(want: (h: TarEntryHeader) => boolean, limits: TarLimits, fail: (err: TarError) => void = () => undefined): { parser: Parser; out: TarRead[]; failed(): TarError | undefined } {
  const out: TarRead[] = [];
  const tally: Tally = { entries: 0, bytes: 0, kept: 0, links: new Map() };
  const maxKept = limits.maxKeptBytes ?? limits.maxTotalBytes;
  let failure: TarError | undefined;
  const refuse = (err: TarError): void => {
    if (failure) return;
    failure = err;
    parser.abort(err);
    fail(err);
  };
  const parser: Parser = new Parser({
    strict: true,
    maxMetaEntrySize: MAX_META_BYTES,
    onReadEntry: (entry: ReadEntry) => {
      if (failure) return entry.resume();
      let header: TarEntryHeader;
      try {
        header = check(entry, limits, tally);
      } catch (err) {
        refuse(err as TarError);
        return entry.resume();
      }
      if (header.type !== 'file' || !want(header)) {
        out.push(header);
        return entry.resume();
      }
      tally.kept += header.size;
      if (tally.kept > maxKept) {
        refuse(new TarError(header.path, `keeping it would hold more than ${maxKept} bytes of contents in memory`));
        return entry.resume();
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => out.push({ ...header, data: Buffer.concat(chunks) }));
    },
  });
  parser.on('ignoredEntry', (entry: ReadEntry) => refuse(refusalOfIgnored(entry)));
  parser.on('error', (err: Error) => refuse(refusalOf(err)));
  return { parser, out, failed: () => failure };
}

/** Reads a whole archive held in memory (gzip or not); throws TarError on the first refusal. */
export function readTarBuffer(data: Buffer, want: (h: TarEntryHeader) => boolean, limits: TarLimits): TarRead[] {
  const c = collector(want, limits);
  c.parser.end(data);
  const failure = c.failed();
  if (failure) throw failure;
  return c.out;
}

/**
 * Reads an archive from a stream (gzip or not), keeping only the wanted files' contents. On a
 * refusal the stream is destroyed rather than read to its end.
 */
export async function readTarStream(stream: Readable, want: (h: TarEntryHeader) => boolean, limits: TarLimits): Promise<TarRead[]> {
  return new Promise<TarRead[]>((resolve, reject) => {
    const c = collector(want, limits, (err) => {
      stream.unpipe();
      stream.destroy();
      reject(err);
    });
    stream.on('error', (err) => reject(c.failed() ?? err));
    c.parser.on('end', () => {
      const failure = c.failed();
      if (failure) reject(failure);
      else resolve(c.out);
    });
    stream.pipe(c.parser as unknown as NodeJS.WritableStream);
  });
}
