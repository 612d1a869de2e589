// fhirguard's one tar reader: image layers (the SBOM's package manifests) and FHIR packages
// (.tgz conformance resources for custom profiles). Parsing is node-tar's (npm's own tar
// implementation): header checksums, PAX and GNU long names and links, gzip detected by itself.
// fhirguard adds what an archive from someone else must not get past: a path that is
// absolute or climbs out (`..`), a link whose target leaves the archive, device files and
// fifos, and sizes past the caller's limits (one entry, the sum, the number of entries). Every
// refusal names the entry. Only the entries a caller wants are kept in memory.

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
  /**
   * The archive is a root filesystem (an image layer): an absolute symbolic link points
   * inside that root, as it will inside the container, and is accepted.
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

interface Tally {
  entries: number;
  bytes: number;
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
  if (type === 'symlink' || type === 'hardlink') {
    const linkpath = String(e.linkpath ?? '');
    if (type === 'symlink') {
      if (linkpath.startsWith('/')) {
        if (!limits.rootfs) throw new TarError(name, `the symbolic link's target '${linkpath}' is absolute`);
      } else safePath(posix.join(posix.dirname(path), linkpath), name, `the symbolic link's target '${linkpath}'`);
    } else safePath(linkpath, name, `the hard link's target '${linkpath}'`);
    header.target = linkpath;
  }
  return header;
}

export type TarRead = TarEntryHeader & { data?: Buffer };

/** A parser that collects headers (and wanted files' contents); `failed()` is the first refusal. */
function collector(want: (h: TarEntryHeader) => boolean, limits: TarLimits): { parser: Parser; out: TarRead[]; failed(): Error | undefined } {
  const out: TarRead[] = [];
  const tally: Tally = { entries: 0, bytes: 0 };
  let failure: Error | undefined;
  /** The entry whose data has not all arrived yet: at the end of input, the archive is truncated. */
  let open: string | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      open = String(entry.path);
      entry.on('end', () => (open = undefined));
      if (failure) return entry.resume();
      let header: TarEntryHeader;
      try {
        header = check(entry, limits, tally);
      } catch (err) {
        failure = err as Error;
        return entry.resume();
      }
      if (header.type !== 'file' || !want(header)) {
        out.push(header);
        return entry.resume();
      }
      const chunks: Buffer[] = [];
      entry.on('data', (c: Buffer) => chunks.push(c));
      entry.on('end', () => out.push({ ...header, data: Buffer.concat(chunks) }));
    },
  });
  parser.on('error', (err: Error) => {
    failure ??= new TarError(undefined, `not a sound tar archive: ${err.message}`);
  });
  return { parser, out, failed: () => failure ?? (open !== undefined ? new TarError(open, 'the archive ends inside this entry (truncated)') : undefined) };
}

/** Reads a whole archive held in memory (gzip or not); throws TarError on the first refusal. */
export function readTarBuffer(data: Buffer, want: (h: TarEntryHeader) => boolean, limits: TarLimits): TarRead[] {
  const c = collector(want, limits);
  c.parser.end(data);
  const failure = c.failed();
  if (failure) throw failure;
  return c.out;
}

/** Reads an archive from a stream (gzip or not), keeping only the wanted files' contents. */
export async function readTarStream(stream: Readable, want: (h: TarEntryHeader) => boolean, limits: TarLimits): Promise<TarRead[]> {
  const c = collector(want, limits);
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    c.parser.on('end', () => resolve());
    c.parser.on('error', () => resolve());
    stream.pipe(c.parser as unknown as NodeJS.WritableStream);
  });
  const failure = c.failed();
  if (failure) throw failure;
  return c.out;
}
