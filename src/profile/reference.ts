// The baselines attack-surface figures are measured against: the whole x86_64 syscall table
// and the set Docker's default seccomp profile allows.

import path from 'node:path';
import { installRoot } from '../install/root';
import { HEADER_SYSCALL_COUNT, NEWER_THAN_HEADERS, SYSCALL_NAMES, syscallNr } from '../enforce/syscalls';
import { ProfileError, readText } from './errors';

/**
 * The x86_64 table as the kernel headers list it (362 names): Docker's "297 of 362" is
 * against this table, so fhirguard's reductions are too. Newer syscalls a profile names
 * still count as allowed names.
 */
export const X86_64_TABLE: readonly string[] = Object.freeze(SYSCALL_NAMES.filter((n) => !Object.prototype.hasOwnProperty.call(NEWER_THAN_HEADERS, n)));
if (X86_64_TABLE.length !== HEADER_SYSCALL_COUNT) {
  // The generated table and its declared size disagree: figures would silently drift.
  throw new Error(`x86_64 syscall table has ${X86_64_TABLE.length} header names, expected ${HEADER_SYSCALL_COUNT}`);
}

/**
 * How many x86_64 syscalls Docker's default seccomp profile allows (moby's
 * profiles/seccomp/default.json, as listed in profiles/reference/docker-default-allow.txt):
 * the baseline the dashboard compares each tier against, available where that list is not
 * (a deployed proxy). test/profile/stats.test.ts checks it against the list.
 */
export const DOCKER_DEFAULT_ALLOWED_COUNT = 297;

/** The list of what Docker's default profile allows, shipped with fhirguard (its source
 * and licence: profiles/reference/README.md). */
export function defaultDockerAllowFile(): string {
  return path.join(installRoot(), 'profiles', 'reference', 'docker-default-allow.txt');
}

export interface DockerDefault {
  file: string;
  /** x86_64 names Docker's default profile allows (the list covers every architecture). */
  allowed: ReadonlySet<string>;
}

/** Reads a one-name-a-line list (`#` comments); names of other architectures are dropped. */
export function loadDockerDefault(file: string): DockerDefault {
  const text = readText(file, ' (give --docker-default <file>)');
  const allowed = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!/^[a-z0-9_]+$/.test(line)) throw new ProfileError(file, `line ${i + 1}`, `not a syscall name: ${JSON.stringify(line)}`);
    if (syscallNr(line) !== undefined) allowed.add(line);
  });
  if (allowed.size === 0) throw new ProfileError(file, undefined, 'lists no x86_64 syscall');
  return { file, allowed };
}
