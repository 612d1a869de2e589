// Versioned resource storage over the shared SQLite file. Every create, update and delete
// appends a version; the current version is what read and search see; the search index
// rows of a resource are replaced in the same transaction as its version. All calls are
// synchronous (better-sqlite3): a request runs from its first statement to its commit
// without yielding to the event loop, so no other request of this process can interleave
// with its transaction.

import type { Statement } from 'better-sqlite3';
import { extractIndexRows, type IndexRows } from '../indexing/extract';
import type { Db } from './open';
import { INDEX_TABLES } from './schema';

export type Json = Record<string, unknown>;

export interface CurrentRow {
  rid: number;
  version: number;
  lastUpdated: number;
  deleted: boolean;
  json: string | null;
}

export interface VersionRow {
  seq: number;
  rid: number;
  type: string;
  id: string;
  version: number;
  lastUpdated: number;
  method: string;
  json: string | null;
}

export interface StoredRow {
  rid: number;
  type: string;
  id: string;
  json: string;
}

export interface WriteResult {
  rid: number;
  version: number;
  lastUpdated: number;
  /** The stored JSON (null for a delete). */
  json: string | null;
  /** True when the resource did not exist (or was deleted) before this write. */
  created: boolean;
}

export interface HistoryScope {
  type?: string;
  id?: string;
  /** Only versions written at or after this instant (ms). */
  since?: number;
}

/** Index columns after (rid, type), in the order extractIndexRows gives them. */
const INDEX_COLUMNS: Record<keyof IndexRows, readonly string[]> = {
  string: ['code', 'norm', 'exact'],
  token: ['code', 'system', 'value', 'text'],
  reference: ['code', 'target_type', 'target_id', 'url'],
  date: ['code', 'lo', 'hi'],
  number: ['code', 'value'],
  quantity: ['code', 'value', 'system', 'unit_code', 'unit'],
  uri: ['code', 'value'],
};

/**
 * One statement per index table and resource: the rows travel as one JSON array and
 * json_each unpacks them inside SQLite, instead of one native call per row.
 */
function insertSql(kind: keyof IndexRows): string {
  const cols = INDEX_COLUMNS[kind];
  return `INSERT INTO ${INDEX_TABLES[kind]} (rid, type, ${cols.join(', ')}) ` + `SELECT ?, ?, ${cols.map((_, i) => `value ->> ${i}`).join(', ')} FROM json_each(?)`;
}

const KINDS = Object.keys(INDEX_TABLES) as (keyof IndexRows)[];

/** Dynamic statements (searches) are cached by their SQL text up to this many. */
const STATEMENT_CACHE_SIZE = 256;

export class ResourceStore {
  private readonly cache = new Map<string, Statement>();
  private readonly currentStmt: Statement;
  private readonly versionStmt: Statement;
  private readonly rowsStmt: Statement;
  private readonly write?: {
    insertResource: Statement;
    updateResource: Statement;
    insertVersion: Statement;
    deleteIndex: Statement[];
    insertIndex: Record<keyof IndexRows, Statement>;
  };

  constructor(
    readonly db: Db,
    readonly readOnly: boolean,
  ) {
    this.currentStmt = db.prepare('SELECT r.rid, r.version, r.last_updated AS lastUpdated, r.deleted, v.json FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?');
    this.versionStmt = db.prepare(
      'SELECT seq, rid, version, type, id, last_updated AS lastUpdated, method, json FROM versions WHERE rid = (SELECT rid FROM resources WHERE type = ? AND id = ?) AND version = ?',
    );
    this.rowsStmt = db.prepare('SELECT r.rid, r.type, r.id, v.json FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.rid IN (SELECT value FROM json_each(?)) AND r.deleted = 0');
    if (!readOnly) {
      this.write = {
        insertResource: db.prepare('INSERT INTO resources (type, id, version, last_updated, deleted, seq) VALUES (?, ?, 0, 0, 0, 0)'),
        updateResource: db.prepare('UPDATE resources SET version = ?, last_updated = ?, deleted = ?, seq = ? WHERE rid = ?'),
        insertVersion: db.prepare('INSERT INTO versions (rid, version, type, id, last_updated, method, json) VALUES (?, ?, ?, ?, ?, ?, ?)'),
        deleteIndex: KINDS.map((k) => db.prepare(`DELETE FROM ${INDEX_TABLES[k]} WHERE rid = ?`)),
        insertIndex: Object.fromEntries(KINDS.map((k) => [k, db.prepare(insertSql(k))])) as Record<keyof IndexRows, Statement>,
      };
    }
  }

  /** A prepared statement for dynamic SQL, reused while it stays among the most recent. */
  prepare(sql: string): Statement {
    let stmt = this.cache.get(sql);
    if (stmt) {
      this.cache.delete(sql);
    } else {
      stmt = this.db.prepare(sql);
      if (this.cache.size >= STATEMENT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(sql, stmt);
    return stmt;
  }

  /**
   * Runs fn in one IMMEDIATE transaction (the write lock is taken at BEGIN, so two writer
   * processes never deadlock upgrading read locks). Inside a transaction already (an entry of
   * a transaction bundle) fn just runs: a failing entry fails the whole bundle, so a
   * savepoint per entry would cost time and protect nothing.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.db.transaction(fn).immediate();
  }

  current(type: string, id: string): CurrentRow | undefined {
    const row = this.currentStmt.get(type, id) as (Omit<CurrentRow, 'deleted'> & { deleted: number }) | undefined;
    return row && { ...row, deleted: row.deleted === 1 };
  }

  version(type: string, id: string, version: number): VersionRow | undefined {
    return this.versionStmt.get(type, id, version) as VersionRow | undefined;
  }

  /** Current, non-deleted resources by rid, in the order of `rids`. */
  rows(rids: readonly number[]): StoredRow[] {
    if (!rids.length) return [];
    const found = new Map<number, StoredRow>();
    for (const row of this.rowsStmt.all(JSON.stringify(rids)) as StoredRow[]) found.set(row.rid, row);
    return rids.map((rid) => found.get(rid)).filter((r): r is StoredRow => r !== undefined);
  }

  /**
   * Appends a version of type/id: the resource (its meta.versionId and meta.lastUpdated set
   * here) or, for null, a delete. The caller holds the transaction.
   */
  put(type: string, id: string, resource: Json | null, method: string, current = this.current(type, id)): WriteResult {
    const w = this.write;
    if (!w) throw new Error('write on a read-only store');
    const version = (current?.version ?? 0) + 1;
    // Never earlier than the version it follows, whatever the clock did.
    const lastUpdated = Math.max(Date.now(), current?.lastUpdated ?? 0);
    let json: string | null = null;
    let stored: Json | null = null;
    if (resource) {
      const { resourceType, id: _id, meta, ...rest } = resource;
      const { versionId: _v, lastUpdated: _l, ...otherMeta } = (meta ?? {}) as Json;
      stored = { resourceType, id, meta: { versionId: String(version), lastUpdated: new Date(lastUpdated).toISOString(), ...otherMeta }, ...rest };
      json = JSON.stringify(stored);
    }
    const rid = current ? current.rid : Number(w.insertResource.run(type, id).lastInsertRowid);
    const seq = Number(w.insertVersion.run(rid, version, type, id, lastUpdated, method, json).lastInsertRowid);
    w.updateResource.run(version, lastUpdated, stored ? 0 : 1, seq, rid);
    if (current && !current.deleted) for (const s of w.deleteIndex) s.run(rid);
    if (stored) this.insertIndexRows(rid, type, extractIndexRows(stored));
    return { rid, version, lastUpdated, json, created: !current || current.deleted };
  }

  private insertIndexRows(rid: number, type: string, rows: IndexRows): void {
    const insert = this.write!.insertIndex;
    for (const kind of KINDS) if (rows[kind].length) insert[kind].run(rid, type, JSON.stringify(rows[kind]));
  }

  history(scope: HistoryScope, count: number, offset: number): VersionRow[] {
    const { where, args } = historyWhere(scope);
    const order = scope.id ? 'version DESC' : 'seq DESC';
    return this.prepare(`SELECT seq, rid, version, type, id, last_updated AS lastUpdated, method, json FROM versions ${where} ORDER BY ${order} LIMIT ? OFFSET ?`).all(
      ...args,
      count,
      offset,
    ) as VersionRow[];
  }

  historyCount(scope: HistoryScope): number {
    const { where, args } = historyWhere(scope);
    return (this.prepare(`SELECT count(*) AS n FROM versions ${where}`).get(...args) as { n: number }).n;
  }
}

function historyWhere(scope: HistoryScope): { where: string; args: unknown[] } {
  const conds: string[] = [];
  const args: unknown[] = [];
  if (scope.id !== undefined) {
    conds.push('rid = (SELECT rid FROM resources WHERE type = ? AND id = ?)');
    args.push(scope.type, scope.id);
  } else if (scope.type !== undefined) {
    conds.push('type = ?');
    args.push(scope.type);
  }
  if (scope.since !== undefined) {
    conds.push('last_updated >= ?');
    args.push(scope.since);
  }
  return { where: conds.length ? `WHERE ${conds.join(' AND ')}` : '', args };
}
