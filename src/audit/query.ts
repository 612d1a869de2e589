// Answering "who touched Patient/123 between these dates" from the trail: every trail file of
// a directory (the rotated ones too), every AuditEvent in them, the ones that match, one row
// each, oldest first. An event written twice (a write retried after a disk error) is one row.

import * as path from 'node:path';
import type { AuditEvent, AuditEventAgent, AuditEventEntity } from './audit-event';
import { listTrailFiles } from './trail-files';
import { readTrailFile } from './trail-read';

export interface AuditQuery {
  /** A patient reference, `Patient/123`. */
  patient?: string;
  /** A client id, a token subject, a user's FHIR reference (Practitioner/7) or a client certificate. */
  who?: string;
  /** Events recorded at or after this instant. */
  since?: Date;
  /** Events recorded before this instant. */
  before?: Date;
}

export interface AuditRow {
  time: string;
  /** The user: their FHIR resource, else the token's subject; '' when the token named none. */
  who: string;
  client: string;
  /** The FHIR interaction (read, search-type, ...). */
  action: string;
  /** The resources read or written, else the request's path and query. */
  what: string;
  /** `success`, or the status and the reason of a failure. */
  outcome: string;
  /** The whole outcome description of a failure. */
  detail: string;
  requestId: string;
  patients: string[];
  /** The AuditEvent's id. */
  id: string;
  /** The trail file it is in. */
  file: string;
}

/** A line that could not be read as an AuditEvent, where it is. */
export interface UnreadableLine {
  file: string;
  line: number;
  why: string;
}

export interface QueryResult {
  rows: AuditRow[];
  files: number;
  events: number;
  unreadable: UnreadableLine[];
}

const CLIENT = '110153';
const USER = 'IRCP';
const PATIENT_ROLE = '1';
const RESOURCE_ROLE = '4';
const QUERY_ROLE = '24';

function agentOf(e: AuditEvent, code: string): AuditEventAgent | undefined {
  return e.agent?.find((a) => a.type?.coding?.some((c) => c.code === code));
}

function entitiesOf(e: AuditEvent, role: string): AuditEventEntity[] {
  return (e.entity ?? []).filter((x) => x.role?.code === role);
}

function refOf(x: AuditEventEntity): string {
  return x.what?.reference ?? x.what?.display ?? '';
}

/** Every name the query's --who can give for the requestor of `e`. */
function whoNames(e: AuditEvent): string[] {
  const client = agentOf(e, CLIENT);
  const user = agentOf(e, USER);
  return [client?.who?.identifier?.value, client?.altId, user?.who?.identifier?.value, user?.who?.reference].filter((n): n is string => typeof n === 'string');
}

export function matchesQuery(e: AuditEvent, q: AuditQuery): boolean {
  if (q.patient !== undefined && !(e.entity ?? []).some((x) => x.what?.reference === q.patient)) return false;
  if (q.who !== undefined && !whoNames(e).includes(q.who)) return false;
  const t = Date.parse(e.recorded);
  if (q.since && !(t >= q.since.getTime())) return false;
  if (q.before && !(t < q.before.getTime())) return false;
  return true;
}

function requestOf(e: AuditEvent): string {
  const request = entitiesOf(e, QUERY_ROLE)[0];
  if (!request) return '';
  // The description is `METHOD path`; the query is kept in base64, byte for byte.
  const target = (request.description ?? '').replace(/^\S+ ?/, '');
  const query = request.query ? Buffer.from(request.query, 'base64').toString('utf8') : '';
  return query ? `${target}?${query}` : target;
}

export function auditRow(e: AuditEvent, file: string): AuditRow {
  const client = agentOf(e, CLIENT);
  const user = agentOf(e, USER);
  const resources = entitiesOf(e, RESOURCE_ROLE).map(refOf).filter(Boolean);
  const detail = e.outcomeDesc ?? '';
  return {
    time: e.recorded,
    who: user?.who?.reference ?? user?.who?.identifier?.value ?? '',
    client: client?.who?.identifier?.value ?? client?.who?.display ?? '',
    action: e.subtype?.[0]?.code ?? '',
    what: resources.length ? resources.join(' ') : requestOf(e),
    outcome: e.outcome === '0' ? 'success' : detail.split(':')[0] || `failure ${e.outcome}`,
    detail,
    requestId: (e.entity ?? []).find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value ?? '',
    patients: entitiesOf(e, PATIENT_ROLE).map(refOf).filter(Boolean),
    id: e.id ?? '',
    file,
  };
}

/**
 * Reads every trail file of `dir` and returns the rows of the events matching `q`, ordered by
 * time. A line a crash cut short at the end of a file is passed over silently (it was never
 * a whole event); any other line that is not an AuditEvent is listed in `unreadable`.
 */
export async function queryTrail(dir: string, q: AuditQuery): Promise<QueryResult> {
  const files = await listTrailFiles(dir);
  const seen = new Set<string>();
  const rows: AuditRow[] = [];
  const unreadable: UnreadableLine[] = [];
  let events = 0;
  for (const file of files) {
    let line = 0;
    for await (const item of readTrailFile(path.join(dir, file))) {
      if (item.kind === 'torn') break;
      line++;
      let e: AuditEvent;
      try {
        e = JSON.parse(item.text) as AuditEvent;
      } catch (err) {
        unreadable.push({ file, line, why: `not JSON: ${(err as Error).message}` });
        continue;
      }
      if (e?.resourceType !== 'AuditEvent' || typeof e.recorded !== 'string') {
        unreadable.push({ file, line, why: 'not an AuditEvent' });
        continue;
      }
      events++;
      if (e.id && seen.has(e.id)) continue;
      if (e.id) seen.add(e.id);
      if (matchesQuery(e, q)) rows.push(auditRow(e, file));
    }
  }
  // Stable: events of one instant stay in trail order.
  rows.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  return { rows, files: files.length, events, unreadable };
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * `--since` / `--until` text as the instant the query compares with: a date (YYYY-MM-DD, UTC)
 * means its first instant for since and the first instant of the next day for until (so the
 * whole day is in); a date-time (zone optional, UTC when absent) means itself, and for until
 * the next millisecond (so it is in). Throws an Error saying what is accepted.
 */
export function parseQueryTime(text: string, bound: 'since' | 'until'): Date {
  const bad = new Error(`'${text}' is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDThh:mm[:ss[.sss]][Z|±hh:mm], UTC when no zone is given)`);
  const d = DATE.exec(text);
  const dt = d ? undefined : DATE_TIME.exec(text);
  const m = d ?? dt;
  if (!m) throw bad;
  const [y, mo, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const [h, mi, s] = dt ? [Number(dt[4]), Number(dt[5]), Number(dt[6] ?? 0)] : [0, 0, 0];
  const ms = dt?.[7] ? Math.floor(Number(dt[7]) * 1000) : 0;
  const utc = Date.UTC(y, mo - 1, day, h, mi, s, ms);
  const back = new Date(utc);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== day || h > 23 || mi > 59 || s > 59) throw bad;
  let offsetMs = 0;
  const zone = dt?.[8];
  if (zone && zone !== 'Z') {
    const [zh, zm] = zone.slice(1).split(':').map(Number);
    if (zh > 23 || zm > 59) throw bad;
    offsetMs = (zone[0] === '-' ? -1 : 1) * (zh * 60 + zm) * 60_000;
  }
  const instant = utc - offsetMs;
  if (bound === 'since') return new Date(instant);
  return new Date(d ? instant + 86_400_000 : instant + 1);
}
