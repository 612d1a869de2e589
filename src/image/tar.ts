// The writer of image layers: the same bytes for the same files (entries sorted by path, one
// fixed mtime, owner root, no user or group names, permission bits folded to 0755/0644), so a
// layer's digest depends on its files alone. POSIX ustar, with PAX extended headers for paths
// and link targets too long for it. Archives are read by src/archive/tar-read.ts.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

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
