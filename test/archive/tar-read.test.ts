// fhirguard's one tar reader against archives crafted byte by byte: what a sound archive
// holds (files, folders, links inside, long names in PAX and GNU form, gzip), and each way an
// archive from someone else is refused, naming the entry: a bad header checksum, truncation,
// paths that are absolute or climb out, links whose targets leave the archive (directly or
// through other links), entries beneath links, devices, fifos and the types node-tar would skip
// silently, extended headers too large to read, and entries, archives and kept contents past
// the limits. The FHIR package loader (custom profiles)
// reads through it, so a profile at a long path is no longer lost.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readTarBuffer, readTarStream, type TarLimits } from '../../src/archive/tar-read';
import { readConformanceFile } from '../../src/fhir/validate/packages';

const LIMITS: TarLimits = { maxEntryBytes: 1024, maxTotalBytes: 4096, maxEntries: 20 };

interface RawEntry {
  name: string;
  type?: string;
  data?: string | Buffer;
  link?: string;
  /** Spoil the header's checksum. */
  badChecksum?: boolean;
}

/** One 512-byte ustar header with a correct (or spoilt) checksum. */
function header(name: string, size: number, type: string, link = '', badChecksum = false): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(link, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write((badChecksum ? sum + 1 : sum).toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function pad(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/** A tar archive of `entries`, ended by two zero blocks. */
function tar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    parts.push(header(e.name, data.length, e.type ?? '0', e.link, e.badChecksum), pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const all = (): boolean => true;
const read = (b: Buffer, limits: TarLimits = LIMITS) => readTarBuffer(b, all, limits);

describe('a sound archive', () => {
  const archive = tar([
    { name: 'package/', type: '5' },
    { name: 'package/a.json', data: '{"a":1}' },
    { name: 'package/link', type: '2', link: 'a.json' },
    { name: 'package/hard', type: '1', link: 'package/a.json' },
  ]);

  test("files, folders and links inside it, with the wanted files' contents", () => {
    expect(read(archive).map((e) => [e.path, e.type, e.target, e.data?.toString()])).toEqual([
      ['package', 'dir', undefined, undefined],
      ['package/a.json', 'file', undefined, '{"a":1}'],
      ['package/link', 'symlink', 'a.json', undefined],
      ['package/hard', 'hardlink', 'package/a.json', undefined],
    ]);
  });

  test('only the files a caller wants are kept in memory', () => {
    const kept = readTarBuffer(archive, (h) => h.path.endsWith('.json') && false, LIMITS);
    expect(kept.every((e) => e.data === undefined)).toBe(true);
  });

  test('gzip is recognised, from a buffer and from a stream', async () => {
    const gz = gzipSync(archive);
    expect(read(gz).map((e) => e.path)).toEqual(['package', 'package/a.json', 'package/link', 'package/hard']);
    expect((await readTarStream(Readable.from([gz.subarray(0, 100), gz.subarray(100)]), all, LIMITS)).map((e) => e.path)).toEqual(['package', 'package/a.json', 'package/link', 'package/hard']);
  });

  test('a PAX path and a GNU long name give the whole path', () => {
    const long = `package/${'d'.repeat(150)}/profile.json`;
    const pax = Buffer.from(paxRecord('path', long));
    const viaPax = tar([
      { name: 'PaxHeader/x', type: 'x', data: pax },
      { name: 'package/short.json', data: '{}' },
    ]);
    expect(read(viaPax).map((e) => e.path)).toEqual([long]);
    const viaGnu = tar([
      { name: '././@LongLink', type: 'L', data: `${long}\0` },
      { name: 'package/short.json', data: '{}' },
    ]);
    expect(read(viaGnu).map((e) => e.path)).toEqual([long]);
  });

  test('links through other links that stay inside are accepted', () => {
    const links = tar([
      { name: 'package/a.json', data: '{}' },
      { name: 'package/up', type: '2', link: '..' },
      { name: 'package/l', type: '2', link: 'up/package/a.json' },
      { name: 'package/h', type: '1', link: 'package/up/package/a.json' },
    ]);
    expect(read(links).map((e) => [e.path, e.target])).toEqual([
      ['package/a.json', undefined],
      ['package/up', '..'],
      ['package/l', 'up/package/a.json'],
      ['package/h', 'package/up/package/a.json'],
    ]);
  });

  test('an absolute symbolic link is accepted in a root filesystem (an image layer)', () => {
    const layer = tar([{ name: 'usr/bin/awk', type: '2', link: '/etc/alternatives/awk' }]);
    expect(read(layer, { ...LIMITS, rootfs: true })[0]).toMatchObject({ path: 'usr/bin/awk', type: 'symlink', target: '/etc/alternatives/awk' });
  });
});

describe('refused, naming the entry', () => {
  const cases: [string, RawEntry[], RegExp][] = [
    ['a bad header checksum', [{ name: 'a.json', data: '{}', badChecksum: true }], /^a\.json: the header's checksum is wrong/],
    ['a path climbing out', [{ name: '../evil.json', data: '{}' }], /\.\.\/evil\.json: the path climbs out/],
    ['a path climbing out in the middle', [{ name: 'package/../../evil.json', data: '{}' }], /climbs out/],
    ['an absolute path', [{ name: '/etc/passwd', data: 'x' }], /\/etc\/passwd: the path is absolute/],
    ['a symbolic link out of the archive', [{ name: 'package/link', type: '2', link: '../../etc/shadow' }], /package\/link: the symbolic link's target '\.\.\/\.\.\/etc\/shadow' climbs out/],
    ['an absolute symbolic link outside a root filesystem', [{ name: 'package/link', type: '2', link: '/etc/shadow' }], /package\/link: the symbolic link's target '\/etc\/shadow' is absolute/],
    ['a hard link out of the archive', [{ name: 'package/hard', type: '1', link: '../outside' }], /package\/hard: the hard link's target '\.\.\/outside' climbs out/],
    ['a character device', [{ name: 'dev/null', type: '3' }], /dev\/null: entry type CharacterDevice is not accepted/],
    ['a block device', [{ name: 'dev/sda', type: '4' }], /dev\/sda: entry type BlockDevice is not accepted/],
    ['a fifo', [{ name: 'pipe', type: '6' }], /pipe: entry type FIFO is not accepted/],
    ['an entry past the size limit', [{ name: 'big.json', data: 'x'.repeat(2000) }], /big\.json: 2000 bytes is more than the 1024/],
    ['an archive past the total limit', Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: 'x'.repeat(1000) })), /f4: the archive holds more than 4096 bytes/],
    ['too many entries', Array.from({ length: 21 }, (_, i) => ({ name: `f${i}`, data: '' })), /f20: more than 20 entries/],
    [
      'a bad checksum after a sound entry',
      [
        { name: 'ok.json', data: '{}' },
        { name: 'b.json', data: '{}', badChecksum: true },
      ],
      /^b\.json: the header's checksum is wrong/,
    ],
    ['a GNU sparse file (skipped by the parser, refused here)', [{ name: 'sparse', type: 'S', data: 'x' }], /^sparse: entry type SparseFile is not accepted/],
    ['an unknown entry type', [{ name: 'odd', type: 'Z', data: 'x' }], /^odd: entry type .* is not accepted/],
    [
      'a PAX header too large to read (its path would be lost)',
      [
        { name: 'PaxHeader/big', type: 'x', data: Buffer.alloc(1024 * 1024 + 1, 0x20) },
        { name: 'package/short.json', data: '{}' },
      ],
      /^PaxHeader\/big: an extended header of 1048577 bytes is more than the 1048576/,
    ],
    [
      'an entry beneath a symbolic link',
      [
        { name: 'package/l', type: '2', link: '../other' },
        { name: 'package/l/x.json', data: '{}' },
      ],
      /^package\/l\/x\.json: the path goes through the symbolic link package\/l/,
    ],
    [
      'a symbolic link out of the archive through another link',
      [
        { name: 'package/up', type: '2', link: '..' },
        { name: 'package/l2', type: '2', link: 'up/../etc' },
      ],
      /^package\/l2: the symbolic link's target 'up\/\.\.\/etc' climbs out/,
    ],
    [
      'a hard link out of the archive through a symbolic link',
      [
        { name: 'package/up', type: '2', link: '..' },
        { name: 'package/h', type: '1', link: 'package/up/../x' },
      ],
      /^package\/h: the hard link's target 'package\/up\/\.\.\/x' climbs out/,
    ],
    [
      'a symbolic link to itself',
      [
        { name: 'loop', type: '2', link: 'loop/x' },
        { name: 'l2', type: '2', link: 'loop/y' },
      ],
      /^l2: the symbolic link's target 'loop\/y' (climbs out|has too many levels)/,
    ],
  ];
  for (const [name, entries, message] of cases) {
    test(name, () => {
      let thrown: unknown;
      try {
        read(tar(entries));
      } catch (err) {
        thrown = err;
      }
      expect(String((thrown as Error | undefined)?.message)).toMatch(message);
    });
  }

  test('an archive that ends inside an entry (truncated)', () => {
    const whole = tar([{ name: 'a.json', data: 'x'.repeat(900) }]);
    expect(() => read(whole.subarray(0, 512 + 300))).toThrow(/^a\.json: the archive ends inside this entry \(truncated\)$/);
  });

  test('contents kept in memory are bounded apart from what is only counted', () => {
    const archive = tar([
      { name: 'a.json', data: 'x'.repeat(600) },
      { name: 'b.json', data: 'x'.repeat(600) },
      { name: 'c.bin', data: 'x'.repeat(600) },
    ]);
    expect(readTarBuffer(archive, (h) => h.path === 'a.json' || h.path === 'c.bin', { ...LIMITS, maxKeptBytes: 1200 }).map((e) => e.path)).toEqual(['a.json', 'b.json', 'c.bin']);
    expect(() => readTarBuffer(archive, all, { ...LIMITS, maxKeptBytes: 1000 })).toThrow(/^b\.json: keeping it would hold more than 1000 bytes of contents in memory$/);
  });

  test('a stream is refused the same way', async () => {
    await expect(readTarStream(Readable.from([tar([{ name: '../evil', data: 'x' }])]), all, LIMITS)).rejects.toThrow(/climbs out/);
  });

  test('a refused stream is destroyed, not read to its end', async () => {
    let served = 0;
    const endless = new Readable({
      read() {
        served++;
        this.push(served === 1 ? tar([{ name: '../evil', data: 'x' }]).subarray(0, 1024) : Buffer.alloc(512));
      },
    });
    await expect(readTarStream(endless, all, LIMITS)).rejects.toThrow(/^\.\.\/evil: the path climbs out/);
    expect(endless.destroyed).toBe(true);
  });
});

describe('FHIR packages for custom profiles', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fg-tar-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a profile at a path only PAX can hold is loaded (it used to be lost)', () => {
    const long = `package/${'StructureDefinition-'.repeat(8)}x.json`;
    const sd = JSON.stringify({ resourceType: 'StructureDefinition', url: 'http://example.org/long', name: 'Long' });
    const file = path.join(dir, 'long.tgz');
    writeFileSync(
      file,
      gzipSync(
        tar([
          { name: 'PaxHeader/x', type: 'x', data: paxRecord('path', long) },
          { name: 'package/placeholder', data: sd },
        ]),
      ),
    );
    const loaded = readConformanceFile(file);
    expect({ problems: loaded.problems, urls: loaded.resources.map((r) => r.url) }).toEqual({ problems: [], urls: ['http://example.org/long'] });
  });

  test('a hostile package is a problem of that file, not a crash', () => {
    const file = path.join(dir, 'evil.tgz');
    writeFileSync(file, gzipSync(tar([{ name: '../../evil.json', data: '{}' }])));
    expect(readConformanceFile(file).problems.join(' ')).toMatch(/evil\.json: the path climbs out/);
  });
});
