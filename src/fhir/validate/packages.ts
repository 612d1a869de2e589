// Reads the conformance resources an operator drops in profiles/fhir/: JSON files (one
// resource, or a Bundle of them) and FHIR packages (.tgz, the npm-style tarballs IGs publish,
// whose package/ folder holds one JSON resource per file), read with fhirguard's tar reader.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTarBuffer, type TarLimits } from '../../archive/tar-read';

export interface ConformanceResource {
  resourceType: string;
  url?: string;
  [key: string]: unknown;
}

export interface LoadedFile {
  file: string;
  resources: ConformanceResource[];
  /** Why the file (or an entry of a package) could not be read. */
  problems: string[];
}

function resourcesOf(json: unknown): ConformanceResource[] {
  if (!json || typeof json !== 'object') return [];
  const r = json as ConformanceResource & { entry?: { resource?: unknown }[] };
  if (r.resourceType === 'Bundle' && Array.isArray(r.entry)) return r.entry.flatMap((e) => resourcesOf(e.resource));
  return typeof r.resourceType === 'string' ? [r] : [];
}

/** A FHIR package is small: IGs publish tens of megabytes at most. */
const PACKAGE_LIMITS: TarLimits = { maxEntryBytes: 64 * 2 ** 20, maxTotalBytes: 512 * 2 ** 20, maxEntries: 100_000 };

/**
 * Whether a package entry is a conformance resource to load: a JSON file directly in
 * package/ (its subfolders hold examples, OpenAPI documents and other material).
 */
function isResourceFile(name: string): boolean {
  return /^(\.\/)?package\/[^/]+\.json$/.test(name) && !name.endsWith('/package.json');
}

export function readConformanceFile(file: string): LoadedFile {
  const loaded: LoadedFile = { file, resources: [], problems: [] };
  try {
    if (file.endsWith('.tgz') || file.endsWith('.tar.gz')) {
      for (const entry of readTarBuffer(fs.readFileSync(file), (h) => isResourceFile(h.path), PACKAGE_LIMITS)) {
        if (!entry.data) continue;
        try {
          loaded.resources.push(...resourcesOf(JSON.parse(entry.data.toString('utf8').replace(/^\uFEFF/, ''))));
        } catch (err) {
          loaded.problems.push(`${entry.path}: ${(err as Error).message}`);
        }
      }
    } else {
      loaded.resources.push(...resourcesOf(JSON.parse(fs.readFileSync(file, 'utf8'))));
    }
  } catch (err) {
    loaded.problems.push((err as Error).message);
  }
  return loaded;
}

/** Every conformance file directly in `dir` (missing dir: none). */
export function readConformanceDir(dir: string): LoadedFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json') || f.endsWith('.tgz') || f.endsWith('.tar.gz'))
    .sort()
    .map((f) => readConformanceFile(path.join(dir, f)));
}
