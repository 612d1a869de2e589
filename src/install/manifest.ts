// What of a fhirguard install running it needs, as a list of roots under the install. One
// list serves two purposes: staging (stage.ts copies exactly these, nothing else, into the
// root-owned state directory) and the install digest (src/trust/digests.ts hashes the code
// roots), so a digest of the checkout and a digest of its staged copy are the same number
// and a statement signed on either verifies against the other.
//
//   code: bin/, package.json, dist/src/, the core FHIR model the validator reads
//         (dist/model/, made by the build), and the production packages of
//         node_modules (package-lock.json: every package not marked dev; without a lock,
//         every package), without native build leftovers (as the worker image leaves them
//         out: an addon's deps/, src/ and object files);
//   data: profiles/ (default policy, tier profiles, custom FHIR profiles the proxy loads) and
//         package-lock.json (the staged copy computes the same list from it).

import { existsSync } from 'node:fs';
import path from 'node:path';
import { productionPackages } from '../image/content';

export interface ManifestRoot {
  /** Path relative to the install (posix separators). */
  rel: string;
  /** Part of what workers run: covered by the install digest. */
  code: boolean;
  /** Paths under the root (relative to it) to leave out. */
  skip?: (relInside: string, isDir: boolean) => boolean;
}

/** The core FHIR model the build writes (src/fhir/validate/model/generate.ts). */
const CORE_MODEL = 'dist/model';

/** Build output of a native addon that it does not load (only build/Release/*.node is kept). */
function nativeBuildLeftover(relInside: string, isDir: boolean): boolean {
  if (relInside === 'deps' || relInside === 'src') return true;
  if (relInside === 'build' || relInside === 'build/Release') return false;
  if (relInside.startsWith('build/')) return isDir || !/^build\/Release\/[^/]+\.node$/.test(relInside) || relInside.includes('test_');
  return false;
}

function packageRoot(install: string, rel: string, nestedListed: boolean): ManifestRoot {
  const hasGyp = existsSync(path.join(install, rel, 'binding.gyp'));
  return {
    rel,
    code: true,
    // With a lock, nested node_modules hold packages the lock lists by themselves.
    skip: (r, isDir) => (nestedListed && isDir && r === 'node_modules') || (hasGyp && nativeBuildLeftover(r, isDir)),
  };
}

/** The roots of what running `install` needs, code first; roots that do not exist are left out. */
export function installManifest(install: string): ManifestRoot[] {
  const withLock = existsSync(path.join(install, 'package-lock.json'));
  const packages = existsSync(path.join(install, 'node_modules')) ? productionPackages(install) : [];
  const roots: ManifestRoot[] = [
    { rel: 'bin', code: true },
    { rel: 'package.json', code: true },
    { rel: 'dist/src', code: true },
    { rel: CORE_MODEL, code: true },
    ...packages.map((p) => packageRoot(install, p, withLock)),
    { rel: 'profiles', code: false },
    { rel: 'package-lock.json', code: false },
  ];
  return roots.filter((r) => existsSync(path.join(install, r.rel)));
}
