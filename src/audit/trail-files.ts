// The trail's files: `audit-<UTC time of creation>.jsonl` in one directory. The time is fixed
// width (`audit-20261205T132422.123Z.jsonl`), so the names sort in the order the files were
// made, and the writer never names a file older than the newest one there; readers (the
// sink, `fhirguard audit`) take the files in name order and never need anything else.

import { promises as fsp, readdirSync } from 'node:fs';

const NAME = /^audit-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z\.jsonl$/;

/** The file name for a file made at `ms` (epoch milliseconds). */
export function trailFileName(ms: number): string {
  return `audit-${new Date(ms).toISOString().replace(/[-:]/g, '')}.jsonl`;
}

/** When a trail file was made, from its name; undefined for a name that is not a trail file's. */
export function trailFileTime(name: string): number | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number);
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  return trailFileName(t) === name ? t : undefined;
}

function trailNames(entries: string[]): string[] {
  return entries.filter((n) => trailFileTime(n) !== undefined).sort();
}

/** The trail files of `dir`, oldest first (names only). */
export async function listTrailFiles(dir: string): Promise<string[]> {
  return trailNames(await fsp.readdir(dir));
}

export function listTrailFilesSync(dir: string): string[] {
  return trailNames(readdirSync(dir));
}

/** The UTC day of `ms`, `YYYY-MM-DD`: the trail starts a new file when it changes. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Makes a new name in `dir` durable (a new file, a renamed one): without it, a synced file can vanish with a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
