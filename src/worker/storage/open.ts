// Opening the shared database, in one of two modes.
//
// Journal mode DELETE (the rollback journal), not WAL. Read tiers open the file with a
// `readonly: true` connection; in DELETE mode such a connection holds only O_RDONLY
// descriptors (the database file; a hot journal is only ever opened to read it) and takes
// its shared lock with fcntl on that read-only descriptor. WAL would need every reader to
// write the -shm index (or open the file `immutable`, which would hide other processes'
// commits). In DELETE mode each read transaction checks the file's change counter, so a
// read-only worker sees every commit made before its request began: the bound is "the next
// request after the commit returned".
//
// synchronous=EXTRA for durability across kill -9 and loss of the page cache (power loss,
// host crash): FULL already fsyncs the journal before the database is written and the
// database before the journal is deleted; EXTRA also fsyncs the directory after the journal
// is unlinked, so a commit can never be undone by a deleted journal that reappears as a hot
// journal after a crash. A 2xx is sent only after COMMIT returned, i.e. after those syncs.
//
// temp_store=MEMORY: sorts, statement journals and temporary indices stay in memory, so the
// worker never creates temp files (a read-only worker creates no file at all).
//
// Several worker processes write the same file: each write is one short IMMEDIATE
// transaction, and the busy timeout makes a writer wait for another's commit instead of
// failing at once.

import Database from 'better-sqlite3';
import { APPLICATION_ID, SCHEMA_SQL, SCHEMA_VERSION } from './schema';

/** How long a statement waits for another process's lock before it gives up (SQLITE_BUSY). */
export const BUSY_TIMEOUT_MS = 10_000;

export type Db = Database.Database;

export class DatabaseOpenError extends Error {}

function checkIdentity(db: Db, file: string): 'fresh' | 'ours' {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }).n;
  if (appId === 0 && version === 0 && tables === 0) return 'fresh';
  if (appId !== APPLICATION_ID) throw new DatabaseOpenError(`${file} is not a fhirguard database`);
  if (version !== SCHEMA_VERSION) {
    throw new DatabaseOpenError(`${file} has schema version ${version}; this worker uses version ${SCHEMA_VERSION}`);
  }
  return 'ours';
}

function openReadOnly(file: string): Db {
  let db: Db;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new DatabaseOpenError(`cannot open ${file} read-only (${(err as Error).message}); a write worker creates it`);
  }
  try {
    db.pragma('temp_store = MEMORY');
    db.pragma('query_only = ON');
    db.pragma('cache_size = -32000');
    const mode = db.pragma('journal_mode', { simple: true }) as string;
    if (mode !== 'delete') throw new DatabaseOpenError(`${file} is in journal mode ${mode}; read-only workers need DELETE`);
    if (checkIdentity(db, file) === 'fresh') {
      throw new DatabaseOpenError(`${file} has no fhirguard schema yet; a write worker creates it`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function openWritable(file: string): Db {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = EXTRA');
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -32000');
    // Several writers may start on a new file at once: the first IMMEDIATE transaction
    // creates the schema, the others find it done.
    db.transaction(() => {
      if (checkIdentity(db, file) === 'fresh') {
        db.exec(SCHEMA_SQL);
        db.pragma(`application_id = ${APPLICATION_ID}`);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }
    }).immediate();
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function openDatabase(file: string, options: { readOnly: boolean }): Db {
  return options.readOnly ? openReadOnly(file) : openWritable(file);
}
