// The staged install (src/install/stage.ts): exactly the install manifest, root's, readable by
// every identity and writable by root alone; files root already owns that way are shared as
// hard links, others copied; a second start redoes only what changed and prunes what the
// manifest dropped; its digest is the checkout's.

import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stageInstall } from '../../src/install/stage';
import { InstallDigest } from '../../src/trust/digests';
import { removeDir, shortTempDir } from '../helpers/confined';

const ROOT = process.getuid?.() === 0;
if (!ROOT) console.warn('stage.test: NOT ROOT: staging is what root does for unprivileged processes; these tests are skipped');
const rootTest = ROOT ? test : test.skip;

let dir: string;
let src: string;
let dest: string;

function write(rel: string, text: string, mode = 0o644): void {
  const p = path.join(src, rel);
  mkdirSync(path.dirname(p), { recursive: true });
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
}

/** Every file and symlink under `root`, relative, sorted. */
function tree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(path.join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(path.join(root, r));
    if (st.isDirectory()) out.push(...tree(root, r));
    else out.push(r);
  }
  return out.sort();
}

beforeEach(() => {
  dir = shortTempDir('stage');
  src = path.join(dir, 'checkout');
  dest = path.join(dir, 'state', 'install');
  mkdirSync(path.dirname(dest), { recursive: true });
  write('package.json', '{"name":"fhirguard"}');
  write(
    'package-lock.json',
    JSON.stringify({
      lockfileVersion: 3,
      packages: {
        '': { name: 'fhirguard' },
        'node_modules/prod': {},
        'node_modules/prod/node_modules/nested': {},
        'node_modules/addon': {},
        'node_modules/devtool': { dev: true },
      },
    }),
  );
  write('bin/fhirguard', '#!/usr/bin/env node\n', 0o755);
  write('dist/src/cli/index.js', 'cli');
  write('dist/bench/run.js', 'a benchmark: not run by a worker');
  write('dist/model/r4-model.json', '{}');
  write('src/cli/index.ts', 'source: not run');
  write('profiles/policy.yaml', 'tiers: []');
  write('profiles/fhir/p.json', '{}');
  write('node_modules/prod/index.js', 'prod');
  symlinkSync('index.js', path.join(src, 'node_modules/prod/main.js'));
  write('node_modules/prod/node_modules/nested/index.js', 'nested');
  write('node_modules/addon/binding.gyp', '{}');
  write('node_modules/addon/build/Release/addon.node', 'ELF', 0o755);
  write('node_modules/addon/build/Release/test_extension.node', 'ELF', 0o755);
  write('node_modules/addon/build/Release/obj/addon.o', 'object');
  write('node_modules/addon/deps/sqlite3.c', 'c');
  write('node_modules/devtool/index.js', 'dev');
  write('node_modules/.bin/devtool', 'link', 0o755);
  write('docs/install.md', 'not run');
});

afterEach(() => removeDir(dir));

rootTest('stages exactly the manifest: code, profiles and the lock; no dev package, build leftover, source or benchmark', () => {
  const r = stageInstall(src, dest);
  const staged = [
    'bin/fhirguard',
    'dist/model/r4-model.json',
    'dist/src/cli/index.js',
    'node_modules/addon/binding.gyp',
    'node_modules/addon/build/Release/addon.node',
    'node_modules/prod/index.js',
    'node_modules/prod/main.js',
    'node_modules/prod/node_modules/nested/index.js',
    'package-lock.json',
    'package.json',
    'profiles/fhir/p.json',
    'profiles/policy.yaml',
  ];
  expect(tree(dest)).toEqual(staged);
  expect(r).toEqual({ root: dest, entries: staged.length, written: staged.length, removed: 0 });
  expect(lstatSync(path.join(dest, 'node_modules/prod/main.js')).isSymbolicLink()).toBe(true);
});

rootTest("root's, readable by all, writable by root alone: root's files are linked, others copied with plain modes", () => {
  // A file another user owns, ones only root can read (a clone made with umask 077), a setuid one.
  chownSync(path.join(src, 'dist/src/cli/index.js'), 1000, 1000);
  chmodSync(path.join(src, 'profiles/policy.yaml'), 0o600);
  chmodSync(path.join(src, 'bin/fhirguard'), 0o700);
  chmodSync(path.join(src, 'node_modules/addon/build/Release/addon.node'), 0o4755);
  stageInstall(src, dest);
  const st = (rel: string) => lstatSync(path.join(dest, rel));
  const origin = (rel: string) => lstatSync(path.join(src, rel));
  // Shared with the checkout: the same inode, root's, 0644.
  expect(st('package.json').ino).toBe(origin('package.json').ino);
  for (const rel of ['dist/src/cli/index.js', 'profiles/policy.yaml', 'bin/fhirguard', 'node_modules/addon/build/Release/addon.node']) {
    expect({ rel, ino: st(rel).ino === origin(rel).ino, uid: st(rel).uid, links: st(rel).nlink }).toEqual({ rel, ino: false, uid: 0, links: 1 });
  }
  expect(st('profiles/policy.yaml').mode & 0o7777).toBe(0o644);
  expect(st('bin/fhirguard').mode & 0o7777).toBe(0o755);
  expect(st('node_modules/addon/build/Release/addon.node').mode & 0o7777).toBe(0o755); // never setuid
  for (const rel of tree(dest)) {
    const s = st(rel);
    if (s.isSymbolicLink()) continue;
    expect({ rel, uid: s.uid, writableByOthers: (s.mode & 0o022) !== 0, readable: (s.mode & 0o004) !== 0 }).toEqual({ rel, uid: 0, writableByOthers: false, readable: true });
  }
  const dirs = (rel: string): string[] => [
    rel,
    ...readdirSync(path.join(dest, rel), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .flatMap((e) => dirs(path.join(rel, e.name))),
  ];
  for (const d of dirs('.')) expect({ d, mode: st(d).mode & 0o7777, uid: st(d).uid }).toEqual({ d, mode: 0o755, uid: 0 });
});

rootTest('a second start writes only what changed and removes what the manifest no longer lists', () => {
  chownSync(path.join(src, 'dist/src/cli/index.js'), 1000, 1000); // copied, not linked
  stageInstall(src, dest);
  expect(stageInstall(src, dest)).toMatchObject({ written: 0, removed: 0 });
  write('dist/src/cli/index.js', 'cli, changed');
  chownSync(path.join(src, 'dist/src/cli/index.js'), 1000, 1000);
  rmSync(path.join(src, 'node_modules/prod/node_modules'), { recursive: true });
  writeFileSync(path.join(dest, 'dist/src/stray.js'), 'left by someone');
  const again = stageInstall(src, dest);
  expect(again).toMatchObject({ written: 1, removed: 2 });
  expect(tree(dest)).not.toContain('dist/src/stray.js');
  expect(existsSync(path.join(dest, 'node_modules/prod/node_modules'))).toBe(false);
  expect(lstatSync(path.join(dest, 'dist/src/cli/index.js')).size).toBe('cli, changed'.length);
});

rootTest('the staged copy digests as the checkout does, so a statement signed on either verifies on the other', async () => {
  chownSync(path.join(src, 'dist/src/cli/index.js'), 1000, 1000);
  stageInstall(src, dest);
  const node = path.join(dir, 'node');
  writeFileSync(node, 'ELF', { mode: 0o755 });
  const [a, b] = await Promise.all([new InstallDigest(src, node).digest(), new InstallDigest(dest, node).digest()]);
  expect(b.sha256).toBe(a.sha256);
  // Profiles and the lock are staged but are not code: the digest leaves them to their own checks.
  expect(a.files).toBe(1 + 9);
});

rootTest('staging into the install itself (a process run from the staged copy) does nothing', () => {
  stageInstall(src, dest);
  expect(stageInstall(dest, dest)).toEqual({ root: dest, entries: 0, written: 0, removed: 0 });
});
