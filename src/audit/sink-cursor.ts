// Where the sink is in the trail: the file and the byte offset just after the last line a FHIR
// server acknowledged. Saved after every acknowledged delivery by writing a new file, syncing
// it and renaming it over the old one (then syncing the directory), so after any crash the
// cursor is the old one or the new one, never half of each: a restarted sink resends at most
// the last delivery, and skips nothing.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { syncDirectory, trailFileTime } from './trail-files';

export interface SinkCursor {
  /** A trail file name; '' before the first file. */
  file: string;
  /** The byte offset in `file` of the first line not delivered yet. */
  offset: number;
}

export const START: SinkCursor = { file: '', offset: 0 };

/** The saved cursor; START when none was saved; throws when the file is there but is not a cursor. */
export async function loadCursor(file: string): Promise<SinkCursor> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return START;
    throw err;
  }
  const c = JSON.parse(text) as Partial<SinkCursor>;
  if (typeof c.file !== 'string' || (c.file !== '' && trailFileTime(c.file) === undefined) || !Number.isSafeInteger(c.offset) || (c.offset as number) < 0) {
    throw new Error(`${file} is not a sink cursor ({"file":"audit-….jsonl","offset":n})`);
  }
  return { file: c.file, offset: c.offset as number };
}

export async function saveCursor(file: string, c: SinkCursor): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await fsp.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify({ file: c.file, offset: c.offset }) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(tmp, file);
  await syncDirectory(path.dirname(file));
}
