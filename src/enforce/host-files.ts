// What a confined worker needs from the host, and nothing more: the node binary, the
// directories holding the shared libraries it and the native addons under node_modules
// load (found with ldd), a few files of /etc, and the fhirguard install (dist/,
// node_modules/, bin/, package.json). The worker image (src/image) is built from the same
// list, file by file. No /usr/bin, no /bin: there is no shell or tool in a worker's root
// to exec, even where seccomp must allow execve for the worker's own start.

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

export interface HostFiles {
  /** Host paths (files or directories) mounted read-only at the same path. */
  readOnly: string[];
  /** Top-level symlinks of the host root (e.g. lib -> usr/lib) recreated in the container root. */
  rootSymlinks: Record<string, string>;
  /** The node binary (absolute, symlinks resolved). */
  node: string;
  /** The fhirguard install root (holding bin/fhirguard). */
  install: string;
}

/** /etc files node reads at start; absent ones are skipped. */
const ETC_FILES = ['/etc/ld.so.cache', '/etc/localtime'];

/** The libraries `ldd` reports for a binary or shared object, as printed and resolved. */
function sharedLibraries(file: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // statically linked, or not an ELF file ldd understands
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function nativeAddons(dir: string, found: string[] = [], depth = 0): string[] {
  if (depth > 8) return found;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) nativeAddons(p, found, depth + 1);
    else if (e.isFile() && e.name.endsWith('.node')) found.push(p);
  }
  return found;
}

/** Directories to mount so that `lib` resolves in the container as on the host. */
function libraryDirs(lib: string): string[] {
  const dirs = [realpathSync(path.dirname(lib))];
  const real = realpathSync(lib);
  dirs.push(path.dirname(real));
  return dirs;
}

/** What a worker runs, file by file: the same list feeds the host bind mounts and the image. */
export interface RuntimeFiles {
  /** The node binary (absolute, symlinks resolved). */
  node: string;
  /** The native addons under the install's node_modules (`*.node`). */
  addons: string[];
  /** The shared libraries node and the addons load, as `ldd` names them (symlinks unresolved). */
  libraries: string[];
  /** The /etc files node reads at start that exist here. */
  etc: string[];
  /** The fhirguard install root (holding bin/fhirguard). */
  install: string;
  /** The parts of the install a worker runs from (dist, node_modules, bin, package.json), resolved. */
  installEntries: string[];
}

/** The install parts a worker runs from, relative to the install root. */
export const INSTALL_ENTRIES = ['dist', 'node_modules', 'bin', 'package.json'];

/** The files a worker runs from on this host. `install` is the fhirguard install root. */
export function runtimeFiles(install: string): RuntimeFiles {
  const node = realpathSync(process.execPath);
  const addons = nativeAddons(path.join(install, 'node_modules'));
  const libraries = new Set<string>();
  for (const bin of [node, ...addons]) {
    for (const lib of sharedLibraries(bin)) if (existsSync(lib)) libraries.add(lib);
  }
  return {
    node,
    addons,
    libraries: [...libraries].sort(),
    etc: ETC_FILES.filter((f) => existsSync(f)),
    install,
    installEntries: INSTALL_ENTRIES.map((f) => path.join(install, f))
      .filter((p) => existsSync(p))
      .map((p) => realpathSync(p)),
  };
}

let cached: HostFiles | undefined;

/**
 * The host files a worker container mounts. `install` is the fhirguard install root.
 * Computed once per process: ldd runs a handful of times.
 */
export function hostFiles(install: string): HostFiles {
  if (cached && cached.install === install) return cached;
  const files = runtimeFiles(install);
  const ro = new Set<string>([files.node]);
  for (const lib of files.libraries) libraryDirs(lib).forEach((d) => ro.add(d));
  for (const f of [...files.etc, ...files.installEntries]) ro.add(f);
  cached = { readOnly: minimalCover([...ro]), rootSymlinks: rootSymlinks(), node: files.node, install };
  return cached;
}

/** The host root's top-level symlinks (lib -> usr/lib on a merged-/usr host). */
export function rootSymlinks(): Record<string, string> {
  const links: Record<string, string> = {};
  for (const name of readdirSync('/')) {
    const p = `/${name}`;
    try {
      if (lstatSync(p).isSymbolicLink()) links[name] = readlinkSync(p);
    } catch {
      // vanished while listing: nothing to recreate
    }
  }
  return links;
}

/**
 * What an operator's server program needs from the host besides the paths its tier names:
 * the program itself (symlinks resolved: the container has only what is mounted), the
 * directories of the shared libraries it loads, and the /etc files the loader reads.
 */
export function programFiles(program: string): { program: string; readOnly: string[] } {
  const real = realpathSync(program);
  const ro = new Set<string>([real]);
  for (const lib of sharedLibraries(real)) if (existsSync(lib)) libraryDirs(lib).forEach((d) => ro.add(d));
  for (const f of ETC_FILES) if (existsSync(f)) ro.add(f);
  return { program: real, readOnly: [...ro] };
}

/** Drops paths already covered by a mounted ancestor, so each directory is mounted once. */
export function minimalCover(paths: string[]): string[] {
  const sorted = [...new Set(paths)].sort();
  const out: string[] = [];
  for (const p of sorted) {
    if (!out.some((q) => p === q || p.startsWith(q.endsWith('/') ? q : `${q}/`))) out.push(p);
  }
  return out;
}

/** True when host path `p` is visible in a container mounting `mounted` (read-only or not). */
export function coveredBy(p: string, mounted: string[]): boolean {
  return mounted.some((q) => p === q || p.startsWith(`${q}/`));
}
