// `fhirguard audit --dir <trail dir> [--patient Patient/123] [--who <id>] [--since <when>]
// [--until <when>] [--json]`: who touched a patient's record, when, how, and how it ended,
// from the audit trail's files (rotated ones too). Read-only: it opens the files and writes
// nothing. Exit status: 0 when the trail was read whole, 1 when a file or a line of it could
// not be read (the answer may then be incomplete: stderr says where), 2 on a usage error.

import * as fs from 'node:fs';
import { parseQueryTime, queryTrail, type AuditQuery, type AuditRow } from '../audit/query';
import type { Command } from './command';

const COLUMNS: [keyof AuditRow, string][] = [
  ['time', 'TIME'],
  ['who', 'WHO'],
  ['client', 'CLIENT'],
  ['action', 'ACTION'],
  ['what', 'WHAT'],
  ['outcome', 'OUTCOME'],
  ['requestId', 'REQUEST ID'],
];

function table(rows: AuditRow[]): string {
  const cells = [COLUMNS.map(([, title]) => title), ...rows.map((r) => COLUMNS.map(([key]) => String(r[key]) || '-'))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  return cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

function usage(message: string): number {
  process.stderr.write(`fhirguard audit: ${message}\n`);
  return 2;
}

/** The query the options ask for, or the message saying what is wrong with them. */
function queryOf(values: Record<string, string | boolean | string[] | undefined>): AuditQuery | string {
  const q: AuditQuery = {};
  if (typeof values.patient === 'string') {
    const p = values.patient.includes('/') ? values.patient : `Patient/${values.patient}`;
    if (!/^Patient\/[A-Za-z0-9\-.]{1,64}$/.test(p)) return `--patient: '${values.patient}' is not a patient reference (Patient/123, or the id alone)`;
    q.patient = p;
  }
  if (typeof values.who === 'string') {
    if (values.who === '') return '--who: give a client id, a subject or a user reference';
    q.who = values.who;
  }
  try {
    if (typeof values.since === 'string') q.since = parseQueryTime(values.since, 'since');
  } catch (err) {
    return `--since: ${(err as Error).message}`;
  }
  try {
    if (typeof values.until === 'string') q.before = parseQueryTime(values.until, 'until');
  } catch (err) {
    return `--until: ${(err as Error).message}`;
  }
  if (q.since && q.before && q.since >= q.before) return `--since ${String(values.since)} is not before --until ${String(values.until)}`;
  return q;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'who touched which patient record, when and how, from the audit trail',
  usage: '--dir <trail dir> [--patient Patient/<id>] [--who <id>] [--since <when>] [--until <when>] [--json]',
  options: {
    dir: { type: 'string', env: 'FHIRGUARD_AUDIT_DIR', arg: '<dir>', help: 'the audit trail directory (its audit-*.jsonl files)' },
    patient: { type: 'string', arg: '<Patient/id>', help: 'only events that concern this patient' },
    who: { type: 'string', arg: '<id>', help: 'only events of this client id, token subject, user reference (Practitioner/7) or client certificate' },
    since: { type: 'string', arg: '<when>', help: 'only events recorded at or after: YYYY-MM-DD, or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm]' },
    until: { type: 'string', arg: '<when>', help: 'only events recorded up to and including: a date (the whole day) or a date-time' },
    json: { type: 'boolean', help: 'one JSON object per event and line instead of the table' },
  },
  details: [
    'Reads every trail file of the directory, oldest first, and lists the matching AuditEvents',
    'by time: who (the user), the client application, the FHIR interaction, what it read or',
    'wrote, how it ended, the X-Request-Id. Dates without a zone are UTC. Exit status: 0 when the',
    'trail was read whole, 1 when a file or line could not be read, 2 on a usage error.',
  ].join('\n'),
  async run(values, positionals) {
    if (positionals.length) return usage(`unexpected argument '${positionals[0]}' (options only; see --help)`);
    const dir = values.dir;
    if (typeof dir !== 'string' || dir === '') return usage('give the trail directory: --dir <dir> (or FHIRGUARD_AUDIT_DIR)');
    let stat: fs.Stats;
    try {
      stat = fs.statSync(dir);
    } catch (err) {
      return usage(`--dir: cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!stat.isDirectory()) return usage(`--dir: ${dir} is not a directory`);
    const q = queryOf(values);
    if (typeof q === 'string') return usage(q);
    let result;
    try {
      result = await queryTrail(dir, q);
    } catch (err) {
      process.stderr.write(`fhirguard audit: reading the trail in ${dir} failed: ${(err as Error).message}\n`);
      return 1;
    }
    if (result.files === 0) process.stderr.write(`fhirguard audit: no trail files (audit-*.jsonl) in ${dir}\n`);
    for (const u of result.unreadable) process.stderr.write(`fhirguard audit: ${u.file} line ${u.line}: ${u.why}\n`);
    if (values.json === true) {
      for (const r of result.rows) process.stdout.write(JSON.stringify(r) + '\n');
    } else if (result.rows.length) {
      process.stdout.write(table(result.rows));
    } else if (result.files > 0) {
      process.stderr.write(`fhirguard audit: no event matches (${result.events} read in ${result.files} file${result.files === 1 ? '' : 's'})\n`);
    }
    return result.unreadable.length ? 1 : 0;
  },
};
