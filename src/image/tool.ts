// fhirguard's own name and version, as the SBOMs it writes name their tool.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from '../install/root';

export function toolVersion(): { name: string; version: string } {
  try {
    const pkg = JSON.parse(readFileSync(path.join(installRoot(), 'package.json'), 'utf8')) as { version?: string };
    return { name: 'fhirguard', version: pkg.version ?? '0.0.0' };
  } catch {
    return { name: 'fhirguard', version: '0.0.0' };
  }
}
