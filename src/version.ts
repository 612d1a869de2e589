// fhirguard's own version, as package.json names it: `fhirguard --version`, the front door's
// CapabilityStatement (software.version) and the build-info metric all say the same thing.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from './install/root';

let cached: string | undefined;

export function fhirguardVersion(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(path.join(installRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
