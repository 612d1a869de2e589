// Reading a trail file line by line from a byte offset, for the sink and `fhirguard audit`.
// Only lines that end in a newline are lines: the writer appends whole lines, so bytes after
// the last newline are either a line being written now (the newest file) or one a crash cut
// short (an older file, which is never appended to again). They come out as one `torn` item
// so each reader decides.

import { promises as fsp } from 'node:fs';

export type TrailItem =
  /** A complete line, without its newline; `end` is the offset just after the newline. */
  | { kind: 'line'; text: string; start: number; end: number }
  /** Bytes after the last newline, up to the end of the file as it was read. */
  | { kind: 'torn'; start: number; bytes: number };

const CHUNK = 1 << 16;

export async function* readTrailFile(file: string, from = 0): AsyncGenerator<TrailItem> {
  const handle = await fsp.open(file, 'r');
  try {
    let carry = Buffer.alloc(0);
    let carryStart = from;
    let position = from;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      let lineStart = 0;
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, lineStart)) {
        yield { kind: 'line', text: data.toString('utf8', lineStart, nl), start: carryStart + lineStart, end: carryStart + nl + 1 };
        lineStart = nl + 1;
      }
      carry = Buffer.from(data.subarray(lineStart));
      carryStart += lineStart;
    }
    if (carry.length) yield { kind: 'torn', start: carryStart, bytes: carry.length };
  } finally {
    await handle.close();
  }
}

/** How many complete lines `file` holds between byte `from` and byte `to`. */
export async function countLines(file: string, from: number, to: number): Promise<number> {
  if (to <= from) return 0;
  const handle = await fsp.open(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let lines = 0;
    for (let position = from; position < to;) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(CHUNK, to - position), position);
      if (bytesRead === 0) break;
      const data = chunk.subarray(0, bytesRead);
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, nl + 1)) lines++;
      position += bytesRead;
    }
    return lines;
  } finally {
    await handle.close();
  }
}
