// The repository root, from source (ts-jest) and from dist/ alike: the nearest folder
// above this file that holds bin/fhirguard.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

function find(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'fhirguard')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no fhirguard repository above ${from}`);
  }
}

export const REPO_ROOT = find(__dirname);
