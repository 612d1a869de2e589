// How much of the trail the sink has not delivered: the lines and bytes from its cursor to the
// end of the newest file. Files only grow, so each file's lines are counted once, and after
// that only the bytes added since; the lines before the cursor in its file are known from
// reading them (the sink keeps that count with its position).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { countLines } from './trail-read';

/** A place in the trail, with the number of complete lines before it in its file. */
export interface TrailPosition {
  file: string;
  offset: number;
  linesBefore: number;
}

export class Backlog {
  private readonly counted = new Map<string, { bytes: number; lines: number }>();

  constructor(private readonly dir: string) {}

  /** Pending lines and bytes from `at` over `files` (the trail files from the cursor's on, oldest first). */
  async measure(files: readonly string[], at: TrailPosition): Promise<{ events: number; bytes: number }> {
    let lines = 0;
    let bytes = 0;
    const keep = new Set(files);
    for (const name of this.counted.keys()) if (!keep.has(name)) this.counted.delete(name);
    for (const name of files) {
      const file = path.join(this.dir, name);
      let size: number;
      try {
        size = (await fsp.stat(file)).size;
      } catch {
        continue; // removed since it was listed
      }
      const c = this.counted.get(name) ?? { bytes: 0, lines: 0 };
      if (size > c.bytes) {
        c.lines += await countLines(file, c.bytes, size);
        c.bytes = size;
      }
      this.counted.set(name, c);
      lines += c.lines;
      bytes += c.bytes;
      if (name === at.file) {
        lines -= at.linesBefore;
        bytes -= at.offset;
      }
    }
    return { events: Math.max(0, lines), bytes: Math.max(0, bytes) };
  }
}
