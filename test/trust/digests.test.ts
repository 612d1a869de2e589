// The install digest, the subject of statements for workers run from the host's files: a
// sorted listing of every file and symlink a worker container mounts of the install, and
// the node binary, hashed. Re-reading is skipped for files whose stat is unchanged, within a
// process and, through a cache file only its owner can write, across processes.

import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { InstallDigest } from '../../src/trust/digests';
import { removeDir, shortTempDir } from '../helpers/confined';

let dir: string;
let install: string;
let node: string;
const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

beforeEach(() => {
  dir = shortTempDir('digest');
  install = path.join(dir, 'install');
  for (const d of ['dist/src', 'node_modules/a', 'node_modules/.cache/x', 'bin', 'docs']) mkdirSync(path.join(install, d), { recursive: true });
  writeFileSync(path.join(install, 'dist/src/w.js'), 'w');
  writeFileSync(path.join(install, 'node_modules/a/i.js'), 'a');
  writeFileSync(path.join(install, 'node_modules/.cache/x/junk'), 'cache');
  symlinkSync('../a/i.js', path.join(install, 'node_modules/a/link.js'));
  writeFileSync(path.join(install, 'bin/fhirguard'), '#!', { mode: 0o755 });
  writeFileSync(path.join(install, 'package.json'), '{}');
  writeFileSync(path.join(install, 'docs/README'), 'not mounted');
  node = path.join(dir, 'node');
  writeFileSync(node, 'ELF', { mode: 0o755 });
});

afterEach(() => removeDir(dir));

test('the listing: node, then every mounted file and symlink sorted by path, with its kind; caches and unmounted files left out', async () => {
  const listing = [
    `${sha('ELF')} x <node>`,
    `${sha('#!')} x bin/fhirguard`,
    `${sha('w')} f dist/src/w.js`,
    `${sha('a')} f node_modules/a/i.js`,
    `${sha('../a/i.js')} l node_modules/a/link.js`,
    `${sha('{}')} f package.json`,
  ];
  const d = await new InstallDigest(install, node).digest();
  expect(d).toEqual({ sha256: sha(listing.join('\n') + '\n'), files: 6, hashed: 6, ms: expect.any(Number) });
});

test('unchanged files are not read again; a change of content, mode or a new file is seen', async () => {
  const tree = new InstallDigest(install, node);
  const first = await tree.digest();
  expect(await tree.digest()).toMatchObject({ sha256: first.sha256, hashed: 0 });
  const f = path.join(install, 'dist/src/w.js');
  // Same size, same mtime put back: the ctime still moves.
  writeFileSync(f, 'W');
  utimesSync(f, new Date(0), new Date(0));
  const edited = await tree.digest();
  expect(edited.hashed).toBe(1);
  expect(edited.sha256).not.toBe(first.sha256);
  writeFileSync(f, 'w');
  expect((await tree.digest()).sha256).toBe(first.sha256);
  chmodSync(f, 0o755);
  expect((await tree.digest()).sha256).not.toBe(first.sha256);
  chmodSync(f, 0o644);
  writeFileSync(path.join(install, 'node_modules/a/new.js'), '');
  expect((await tree.digest()).sha256).not.toBe(first.sha256);
});

test('a cache file carries the stat cache to the next process; one others could write is ignored', async () => {
  const cacheFile = path.join(dir, 'trust', 'install-digest.json');
  const first = await new InstallDigest(install, node, cacheFile).digest();
  expect(first.hashed).toBe(6);
  expect(JSON.parse(readFileSync(cacheFile, 'utf8'))).toMatchObject({ version: 1, install, entries: expect.any(Array) });
  expect(await new InstallDigest(install, node, cacheFile).digest()).toMatchObject({ sha256: first.sha256, hashed: 0 });
  writeFileSync(path.join(install, 'node_modules/a/i.js'), 'b');
  const changed = await new InstallDigest(install, node, cacheFile).digest();
  expect(changed.hashed).toBe(1);
  expect(changed.sha256).not.toBe(first.sha256);
  // A cache for another install, or one in a directory others may write, is not used.
  const other = path.join(dir, 'other');
  cpSync(install, other, { recursive: true, verbatimSymlinks: true });
  expect((await new InstallDigest(other, node, path.join(dir, 'trust', 'x.json')).digest()).hashed).toBe(6);
  const otherCache = readFileSync(path.join(dir, 'trust', 'x.json'));
  writeFileSync(cacheFile, otherCache);
  expect((await new InstallDigest(install, node, cacheFile).digest()).hashed).toBe(6);
  chmodSync(path.dirname(cacheFile), 0o777);
  expect((await new InstallDigest(install, node, cacheFile).digest()).hashed).toBe(6);
  chmodSync(path.dirname(cacheFile), 0o700);
  chmodSync(cacheFile, 0o666);
  expect((await new InstallDigest(install, node, cacheFile).digest()).hashed).toBe(6);
  // A forged line is ignored too.
  writeFileSync(cacheFile, JSON.stringify({ version: 1, install, entries: [['x', 'y', 'not a line']] }), { mode: 0o600 });
  chmodSync(cacheFile, 0o600);
  expect((await new InstallDigest(install, node, cacheFile).digest()).sha256).toBe(changed.sha256);
});
