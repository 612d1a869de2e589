// A writer that dies in the middle of a commit, made on demand: what a worker killed by the
// kernel (out of memory, SIGKILL) or a power cut leaves behind, a hot rollback journal beside
// a database file that already holds some of the transaction's pages and has grown. Every
// recording (and its proof) ends with one, because what the tiers' workers do next must be in
// their profiles: a read-only worker opens the journal read-only, sees it is hot and answers
// 503 until a writer has rolled it back (SQLite also calls geteuid there, about the journal's
// owner); a writing worker rolls it back at its next transaction (reads the journal, writes
// the old pages back, truncates the database to its size before, syncs, unlinks the journal).
// Neither can be reached by a request: without it, a read worker meeting a crashed writer's
// journal was killed by its eBPF policy, and a writer could not roll back (ftruncate refused).
//
// The crash: a child process opens the database with the SQLite the workers use, begins a
// transaction that writes more pages than its page cache holds (so SQLite syncs the journal,
// which makes it hot, and spills pages into the database file, growing it), and SIGKILLs
// itself inside the transaction. It loads better-sqlite3 from the install the workers run
// (as root, the staged copy in the state directory: a checkout in root's home is closed to
// the worker identity).

import { spawn } from 'node:child_process';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from '../install/root';
import type { WorkerIdentity } from '../enforce/layout';

/** The first bytes of a rollback journal header that SQLite will play back. */
const JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);

const CRASH = `
const Database = require(process.argv[1]);
const db = new Database(process.argv[2], { fileMustExist: true });
db.pragma('cache_size = 8');
db.exec('BEGIN IMMEDIATE');
db.exec('CREATE TABLE fhirguard_crashed_commit (x BLOB)');
db.exec('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 256) INSERT INTO fhirguard_crashed_commit SELECT zeroblob(4096) FROM n');
process.kill(process.pid, 'SIGKILL');
`;

export function journalOf(db: string): string {
  return `${db}-journal`;
}

/** Whether `db` has a rollback journal SQLite must play back before anyone reads it. */
export function hasHotJournal(db: string): boolean {
  const journal = journalOf(db);
  if (!existsSync(journal)) return false;
  const head = Buffer.alloc(JOURNAL_MAGIC.length);
  const fd = openSync(journal, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return head.equals(JOURNAL_MAGIC);
}

export interface CrashedCommit {
  dbBytesBefore: number;
  dbBytesAfter: number;
}

/**
 * Leaves `db` as a writer that died mid-commit leaves it (the child runs as `identity` when
 * given, like the workers, from `install`, the install they run from; it must be able to
 * reach the database). No worker may be writing at that moment. Throws unless the journal is
 * hot and the database grew.
 */
export async function leaveCrashedCommit(db: string, identity: WorkerIdentity | null, install: string = installRoot()): Promise<CrashedCommit> {
  const dbBytesBefore = statSync(db).size;
  const child = spawn(process.execPath, ['-e', CRASH, path.join(install, 'node_modules', 'better-sqlite3'), db], {
    stdio: ['ignore', 'ignore', 'pipe'],
    cwd: install,
    ...(identity ? { uid: identity.uid, gid: identity.gid } : {}),
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  if (exit.signal !== 'SIGKILL') throw new Error(`the crashing writer did not die inside its transaction (${exit.code ?? exit.signal}): ${stderr.trim().slice(-1000)}`);
  const dbBytesAfter = statSync(db).size;
  if (!hasHotJournal(db) || dbBytesAfter <= dbBytesBefore) {
    throw new Error(`the crashing writer left no hot journal and grown database (journal hot: ${hasHotJournal(db)}, ${dbBytesBefore} -> ${dbBytesAfter} bytes)`);
  }
  return { dbBytesBefore, dbBytesAfter };
}
