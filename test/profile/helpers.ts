// Runs the real `fhirguard profile` CLI (compiled dist/: run `npx tsc -p tsconfig.json`
// first) and finds the profile fixtures and the shipped profiles.

import { spawnSync } from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'profile');
export const SHIPPED = path.join(REPO_ROOT, 'profiles');
export const DOCKER_DEFAULT = path.resolve(REPO_ROOT, '..', 'shared', 'reference', 'docker-default-allow.txt');
export const SMALL_DOCKER_DEFAULT = path.join(FIXTURES, 'docker-default-small.txt');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function profileCli(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'fhirguard'), 'profile', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, FHIRGUARD_PROFILES: '', FHIRGUARD_DOCKER_DEFAULT: '' },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parses stdout as JSON, showing stderr when the command failed. */
export function jsonOf(r: CliResult): any {
  if (r.code !== 0 && r.code !== 1) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
