// FHIR packages (IG .tgz files) that tests validate examples against, fetched from the npm
// registry with `npm pack` on first use into node_modules/.cache/fhirguard/fhir-packages and
// checked against the integrity the registry published for them. Not committed: they are
// hundreds of kilobytes each, and pinned by version and digest here instead.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CACHE = path.resolve(__dirname, '..', '..', 'node_modules', '.cache', 'fhirguard', 'fhir-packages');

export interface FhirPackage {
  name: string;
  version: string;
  /** The registry's dist.integrity (sha512, base64). */
  integrity: string;
}

/** HL7 International Patient Summary 2.0.0 (CC0). */
export const IPS: FhirPackage = {
  name: 'hl7.fhir.uv.ips',
  version: '2.0.0',
  integrity: 'sha512-4PWToJ9b1FgXsm9DIvHiU6HO9Z5m75jxk0e0MXOmhFlf2m2slk/d6RoiSYIChKJlvmtJ7GbRftt7PphlwmZcbQ==',
};

function intact(file: string, integrity: string): boolean {
  return fs.existsSync(file) && 'sha512-' + createHash('sha512').update(fs.readFileSync(file)).digest('base64') === integrity;
}

/** The package's .tgz, fetched if needed; throws when it cannot be fetched or does not match. */
export function fhirPackage(p: FhirPackage): string {
  const dir = path.join(CACHE, `${p.name}-${p.version}`);
  const file = path.join(dir, `${p.name}-${p.version}.tgz`);
  if (intact(file, p.integrity)) return file;
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', `${p.name}@${p.version}`, '--pack-destination', dir, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  if (!intact(file, p.integrity)) throw new Error(`${file} does not match the integrity pinned for ${p.name}@${p.version}`);
  return file;
}
