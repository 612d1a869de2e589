// Reads the conformance resources an operator drops in profiles/fhir/: JSON files (one
// resource, or a Bundle of them) and FHIR packages (.tgz, the npm-style tarballs IGs publish,
// whose package/ folder holds one JSON resource per file). The tar format is read directly:
// 512-byte headers, file data padded to 512 bytes.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';

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

/** The regular files of a tar archive, by name. */
export function untar(data: Buffer): { name: string; data: Buffer }[] {
  const out: { name: string; data: Buffer }[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= data.length) {
    const header = data.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, len: number) => header.subarray(start, start + len).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] || 48);
    const prefix = field(345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    const body = data.subarray(off + 512, off + 512 + size);
    if (type === 'L') longName = body.toString('utf8').replace(/\0.*$/s, '');
    else if (type === '0' || type === '\0') out.push({ name, data: body });
    name = '';
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function readConformanceFile(file: string): LoadedFile {
  const loaded: LoadedFile = { file, resources: [], problems: [] };
  try {
    if (file.endsWith('.tgz') || file.endsWith('.tar.gz')) {
      for (const entry of untar(gunzipSync(fs.readFileSync(file)))) {
        if (!entry.name.endsWith('.json') || entry.name.endsWith('package.json') || entry.name.includes('/other/')) continue;
        try {
          loaded.resources.push(...resourcesOf(JSON.parse(entry.data.toString('utf8'))));
        } catch (err) {
          loaded.problems.push(`${entry.name}: ${(err as Error).message}`);
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

/** The repository root (where package.json is), from src/ or dist/src/. */
export function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'profiles'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}
