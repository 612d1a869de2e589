// What goes into the worker image, layer by layer, computed from the same list of runtime
// files that confined workers get as bind mounts (enforce/host-files.ts):
//   runtime:      the node binary, the shared libraries it and the native addons load, with
//                 every symlink on their paths (/lib64 -> usr/lib64...), the /etc files node
//                 reads, /etc/os-release, the dpkg records of the Debian packages these came
//                 from, and the empty mount points (/proc, /dev, /data, /run/fhirguard);
//   node_modules: the install's production dependencies (package-lock.json: no dev-only
//                 package, no .bin links, no native build leftovers);
//   app:          bin/fhirguard, package.json and dist/src.
// No shell, no coreutils, no package manager: nothing a worker does not run.

import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { runtimeFiles } from '../enforce/host-files';
import { owningPackages, STATUS_DIR, statusRecord, type DebianPackage } from './debian';
import type { TarEntry } from './tar';

/** Where the install lives in the image, and where the agent mounts the data and socket directories. */
export const IMAGE_APP_DIR = '/opt/fhirguard';
export const IMAGE_DATA_DIR = '/data';
export const IMAGE_SOCKET_DIR = '/run/fhirguard';
/** Config labels telling the agent the mount points above. */
export const DATA_DIR_LABEL = 'org.fhirguard.data-dir';
export const SOCKET_DIR_LABEL = 'org.fhirguard.socket-dir';

export type LayerName = 'runtime' | 'node_modules' | 'app';

export interface LayerPlan {
  name: LayerName;
  /** The layer's history line (created_by). */
  description: string;
  entries: TarEntry[];
}

export interface ImagePlan {
  layers: LayerPlan[];
  /** Debian packages the runtime layer copies files of. */
  packages: DebianPackage[];
  /** The node binary's path (the same in the image as on the host). */
  node: string;
  /** The image's entrypoint: node running bin/fhirguard. */
  entrypoint: string[];
  version: string;
}

type Entries = Map<string, TarEntry>;

function rel(p: string): string {
  return p.replace(/^\/+/, '');
}

function addDirs(out: Entries, p: string): void {
  const parts = rel(p).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const d = parts.slice(0, i).join('/');
    if (!out.has(d)) out.set(d, { path: d, type: 'dir' });
  }
}

/**
 * Adds host path `p` at its own path, with every symlink met on the way (each recreated as
 * it is on the host, its target added too): the path then resolves in the image as here.
 */
export function addHostPath(out: Entries, p: string, depth = 0): void {
  if (depth > 40) throw new Error(`${p}: too many levels of symbolic links`);
  const parts = rel(p).split('/').filter(Boolean);
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    const next = `${cur}/${parts[i]}`;
    const st = lstatSync(next);
    const r = rel(next);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(next);
      out.set(r, { path: r, type: 'symlink', target });
      addHostPath(out, path.join(path.resolve(cur || '/', target), ...parts.slice(i + 1)), depth + 1);
      return;
    }
    if (st.isDirectory()) {
      if (!out.has(r)) out.set(r, { path: r, type: 'dir' });
    } else if (st.isFile() && i === parts.length - 1) {
      out.set(r, { path: r, type: 'file', executable: (st.mode & 0o111) !== 0, source: next });
    } else {
      throw new Error(`${next}: not a regular file, directory or symlink`);
    }
    cur = next;
  }
}

/**
 * Adds the tree under host directory `src` at image path `dest`, skipping what `skip` names
 * (by path relative to `src`). Symlinks are kept as links.
 */
function addTree(out: Entries, src: string, dest: string, skip: (relPath: string, isDir: boolean) => boolean = () => false): void {
  const walk = (dir: string, relDir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = relDir ? `${relDir}/${e.name}` : e.name;
      if (skip(r, e.isDirectory())) continue;
      const host = path.join(dir, e.name);
      const at = rel(path.posix.join(dest, r));
      if (e.isSymbolicLink()) out.set(at, { path: at, type: 'symlink', target: readlinkSync(host) });
      else if (e.isDirectory()) {
        out.set(at, { path: at, type: 'dir' });
        walk(host, r);
      } else if (e.isFile()) out.set(at, { path: at, type: 'file', executable: (lstatSync(host).mode & 0o111) !== 0, source: host });
    }
  };
  addDirs(out, dest);
  walk(src, '');
}

/** Files a native addon's package leaves from its build that the addon does not load. */
function nativeBuildLeftover(relPath: string, isDir: boolean, hasGyp: boolean): boolean {
  if (!hasGyp) return false;
  if (relPath === 'deps' || relPath === 'src') return true;
  if (relPath === 'build' || relPath === 'build/Release') return false;
  if (relPath.startsWith('build/')) return isDir || !/^build\/Release\/[^/]+\.node$/.test(relPath) || relPath.includes('test_');
  return false;
}

/**
 * The install's production packages, as package directories relative to the install
 * (package-lock.json: every package not marked dev); every package when there is no lock.
 */
export function productionPackages(install: string): string[] {
  const lockFile = path.join(install, 'package-lock.json');
  if (!existsSync(lockFile)) {
    return readdirSync(path.join(install, 'node_modules'))
      .filter((n) => !n.startsWith('.'))
      .map((n) => `node_modules/${n}`);
  }
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages?: Record<string, { dev?: boolean; link?: boolean }> };
  if (!lock.packages) throw new Error(`${lockFile}: lockfileVersion 2 or later is needed (a "packages" section)`);
  return Object.entries(lock.packages)
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev && !v.link && existsSync(path.join(install, k)))
    .map(([k]) => k)
    .sort();
}

function nodeModulesLayer(install: string): Entries {
  const out: Entries = new Map();
  const app = rel(IMAGE_APP_DIR);
  for (const pkg of productionPackages(install)) {
    const src = path.join(install, pkg);
    const hasGyp = existsSync(path.join(src, 'binding.gyp'));
    // Nested node_modules hold packages of their own, each listed in the lock by itself.
    addTree(out, src, `${app}/${pkg}`, (r, isDir) => (isDir && r === 'node_modules') || nativeBuildLeftover(r, isDir, hasGyp));
  }
  return out;
}

function appLayer(install: string): Entries {
  const out: Entries = new Map();
  const app = rel(IMAGE_APP_DIR);
  const file = (name: string): void => {
    const host = realpathSync(path.join(install, name));
    out.set(`${app}/${name}`, { path: `${app}/${name}`, type: 'file', executable: (lstatSync(host).mode & 0o111) !== 0, source: host });
  };
  addDirs(out, `${app}/bin`);
  file('bin/fhirguard');
  file('package.json');
  addTree(out, realpathSync(path.join(install, 'dist', 'src')), `${app}/dist/src`);
  return out;
}

/**
 * A path and its names before /usr was merged (/usr/lib/x/libc.so.6 is /lib/x/libc.so.6
 * where /lib -> usr/lib): dpkg knows files by the name their package ships them under.
 */
function mergedUsrAliases(p: string): string[] {
  const m = /^\/usr\/([^/]+)\/(.*)$/.exec(p);
  if (!m) return [p];
  try {
    const link = readlinkSync(`/${m[1]}`);
    return link === `usr/${m[1]}` || link === `/usr/${m[1]}` ? [p, `/${m[1]}/${m[2]}`] : [p];
  } catch {
    return [p];
  }
}

function runtimeLayer(install: string): { entries: Entries; packages: DebianPackage[]; node: string } {
  const files = runtimeFiles(install);
  const out: Entries = new Map();
  for (const p of [files.node, ...files.libraries, ...files.etc, ...(existsSync('/etc/os-release') ? ['/etc/os-release'] : [])]) addHostPath(out, p);
  // Files and links to files: a directory link (/lib -> usr/lib) belongs to every package
  // with a file below it.
  const copied = [...out.values()].filter((e) => e.type === 'file' || (e.type === 'symlink' && statSync(`/${e.path}`).isFile())).map((e) => `/${e.path}`);
  const packages = owningPackages([...new Set(copied.flatMap(mergedUsrAliases))]);
  for (const p of packages) {
    const at = `${STATUS_DIR}/${p.package}`;
    addDirs(out, STATUS_DIR);
    out.set(at, { path: at, type: 'file', executable: false, data: Buffer.from(statusRecord(p)) });
  }
  for (const d of ['/proc', '/dev', IMAGE_DATA_DIR, IMAGE_SOCKET_DIR]) addDirs(out, d);
  return { entries: out, packages, node: files.node };
}

export function planImage(install: string): ImagePlan {
  const runtime = runtimeLayer(install);
  const pkg = JSON.parse(readFileSync(path.join(install, 'package.json'), 'utf8')) as { version?: string };
  const node = runtime.node;
  return {
    layers: [
      { name: 'runtime', description: `fhirguard image build: node ${process.version} and the shared libraries it loads`, entries: [...runtime.entries.values()] },
      { name: 'node_modules', description: 'fhirguard image build: production node_modules', entries: [...nodeModulesLayer(install).values()] },
      { name: 'app', description: `fhirguard image build: fhirguard ${pkg.version ?? ''} (bin, dist/src, package.json)`.trimEnd(), entries: [...appLayer(install).values()] },
    ],
    packages: runtime.packages,
    node,
    entrypoint: [node, `${IMAGE_APP_DIR}/bin/fhirguard`],
    version: pkg.version ?? '0.0.0',
  };
}
