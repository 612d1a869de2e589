// Tar archives for image layers: a writer that gives the same bytes for the same files
// (entries sorted by path, one fixed mtime, owner root, no user or group names, permission
// bits folded to 0755/0644) and a streaming reader for scanning layers without unpacking
// them. POSIX ustar, with PAX extended headers for paths and link targets too long for it.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';

export type TarEntry =
  | { path: string; type: 'dir' }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'file'; executable: boolean; source: string }
  | { path: string; type: 'file'; executable: boolean; data: Buffer };

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(fields: { name: string; mode: number; size: number; mtime: number; type: string; link?: string; prefix?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(fields.name, 0, 100, 'utf8');
  b.write(octal(fields.mode, 8), 100, 'ascii');
  b.write(octal(0, 8), 108, 'ascii'); // uid
  b.write(octal(0, 8), 116, 'ascii'); // gid
  b.write(octal(fields.size, 12), 124, 'ascii');
  b.write(octal(fields.mtime, 12), 136, 'ascii');
  b.write('        ', 148, 'ascii'); // checksum counted as spaces
  b.write(fields.type, 156, 'ascii');
  if (fields.link) b.write(fields.link, 157, 100, 'utf8');
  b.write('ustar\0', 257, 'ascii');
  b.write('00', 263, 'ascii');
  if (fields.prefix) b.write(fields.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

/** A PAX record: "<len> <key>=<value>\n", where len counts the whole record. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** Splits a path into ustar's prefix and name fields, or null when it does not fit them. */
function ustarName(p: string): { name: string; prefix?: string } | null {
  if (Buffer.byteLength(p) <= 100) return { name: p };
  for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return { name, prefix };
  }
  return null;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/**
 * Writes `entries` as a tar file, sorted by path (a parent always before what it holds),
 * every entry with mtime `epoch` and owner 0:0. Paths are relative (no leading '/').
 */
export function writeTar(file: string, entries: readonly TarEntry[], epoch: number): { entries: number; bytes: number } {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].path === sorted[i - 1].path) throw new Error(`tar: ${sorted[i].path} is listed twice`);
  }
  const fd = openSync(file, 'w', 0o600);
  let bytes = 0;
  const put = (b: Buffer): void => {
    writeSync(fd, b);
    bytes += b.length;
  };
  try {
    for (const e of sorted) {
      if (e.path.startsWith('/') || e.path.split('/').includes('..') || !e.path) throw new Error(`tar: bad entry path ${JSON.stringify(e.path)}`);
      const name = e.type === 'dir' ? `${e.path}/` : e.path;
      const data = e.type === 'file' ? ('data' in e ? e.data : readFileSync(e.source)) : Buffer.alloc(0);
      const link = e.type === 'symlink' ? e.target : undefined;
      const mode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : e.executable ? 0o755 : 0o644;
      const type = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0';
      let fit = ustarName(name);
      const longLink = link !== undefined && Buffer.byteLength(link) > 100;
      if (!fit || longLink) {
        const pax = Buffer.from((fit ? '' : paxRecord('path', name)) + (longLink ? paxRecord('linkpath', link) : ''), 'utf8');
        put(header({ name: 'PaxHeader', mode: 0o644, size: pax.length, mtime: epoch, type: 'x' }));
        put(pax);
        put(padding(pax.length));
        fit = fit ?? { name: name.slice(-100) };
      }
      put(header({ ...fit, mode, size: data.length, mtime: epoch, type, link: longLink ? link!.slice(0, 100) : link }));
      if (data.length) {
        put(data);
        put(padding(data.length));
      }
    }
    put(Buffer.alloc(2 * BLOCK));
  } finally {
    closeSync(fd);
  }
  return { entries: sorted.length, bytes };
}

export interface TarHeader {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  mode: number;
  size: number;
  /** Link target (symlinks and hard links). */
  target?: string;
}

function field(b: Buffer, start: number, len: number): string {
  const raw = b.subarray(start, start + len);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? len : end).toString('utf8');
}

function parseOctal(b: Buffer, start: number, len: number): number {
  if (b[start] & 0x80) {
    // GNU base-256 for large values
    let n = 0;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + b[i];
    return n;
  }
  const s = field(b, start, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!len) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const TYPES: Record<string, TarHeader['type']> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '2': 'symlink', '1': 'hardlink' };

/**
 * Reads a tar stream entry by entry; `want` decides which entries' contents are kept.
 * Returns every header, with the kept contents. Paths come without a leading './' or '/'.
 */
export async function readTar(stream: Readable, want: (h: TarHeader) => boolean): Promise<Array<TarHeader & { data?: Buffer }>> {
  const out: Array<TarHeader & { data?: Buffer }> = [];
  let buf: Buffer = Buffer.alloc(0);
  let pending: { header: TarHeader | null; left: number; pad: number; keep: Buffer[] | null; meta?: 'pax' | 'longname' | 'longlink' } | null = null;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let ended = false;

  const finish = (p: NonNullable<typeof pending>): void => {
    const data = p.keep ? Buffer.concat(p.keep) : undefined;
    if (p.meta === 'pax') pax = parsePax(data!);
    else if (p.meta === 'longname') longName = data!.toString('utf8').replace(/\0+$/, '');
    else if (p.meta === 'longlink') longLink = data!.toString('utf8').replace(/\0+$/, '');
    else if (p.header) out.push(data ? { ...p.header, data } : p.header);
  };

  for await (const chunk of stream) {
    buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
    for (;;) {
      if (ended) break;
      if (pending) {
        const take = Math.min(pending.left, buf.length);
        if (take > 0) {
          if (pending.keep) pending.keep.push(Buffer.from(buf.subarray(0, take)));
          pending.left -= take;
          buf = buf.subarray(take);
        }
        if (pending.left > 0) break;
        if (buf.length < pending.pad) break;
        buf = buf.subarray(pending.pad);
        finish(pending);
        pending = null;
        continue;
      }
      if (buf.length < BLOCK) break;
      const h = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (h.every((x) => x === 0)) {
        ended = true;
        break;
      }
      const flag = String.fromCharCode(h[156]);
      const size = parseOctal(h, 124, 12);
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (flag === 'x' || flag === 'L' || flag === 'K') {
        pending = { header: null, left: size, pad, keep: [], meta: flag === 'x' ? 'pax' : flag === 'L' ? 'longname' : 'longlink' };
        continue;
      }
      if (flag === 'g') {
        pending = { header: null, left: size, pad, keep: null };
        continue;
      }
      const prefix = field(h, 345, 155);
      let name = pax.path ?? longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
      name = name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
      const target = pax.linkpath ?? longLink ?? field(h, 157, 100);
      const realSize = pax.size !== undefined ? Number(pax.size) : size;
      const header: TarHeader = {
        path: name,
        type: TYPES[flag] ?? 'other',
        mode: parseOctal(h, 100, 8),
        size: realSize,
        ...(flag === '1' || flag === '2' ? { target } : {}),
      };
      pax = {};
      longName = undefined;
      longLink = undefined;
      pending = { header, left: realSize, pad: (BLOCK - (realSize % BLOCK)) % BLOCK, keep: header.type === 'file' && want(header) ? [] : null };
    }
  }
  if (pending && pending.left === 0) finish(pending);
  return out;
}
