// The fhirguard install (the directory holding package.json, bin/, dist/ and profiles/),
// found from this file whether it runs compiled (dist/src/install) or from source: the one
// place fhirguard looks for itself. Processes that run without root run from the copy root
// stages of it instead (runnableInstall in src/install/stage.ts): this install may sit where
// they cannot reach it.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export function installRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fhirguard') return dir;
      } catch {
        // not ours: keep looking upwards
      }
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the fhirguard install above ${__dirname}`);
}
