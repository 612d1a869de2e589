// `fhirguard audit` as operators run it: the real CLI (bin/fhirguard on the compiled dist/,
// built by `npx tsc -p tsconfig.json`) over a trail of several files and days, answering who
// touched a patient's record, as a table and as JSON lines, and refusing bad options clearly.

import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import type { AuditRecord } from '../../src/audit/record';
import { AuditTrail } from '../../src/audit/trail';
import { readRecord } from './records';
import { keptLog, trailDir, trailFiles } from './trail-helpers';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'fhirguard');

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'audit', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FHIRGUARD_AUDIT_DIR: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const PRACTITIONER_7 = { issuer: 'https://idp.example', clientId: 'growth-chart', subject: 'user-7', fhirUser: 'Practitioner/7', scopes: ['user/*.rs'] };
const PRACTITIONER_8 = { issuer: 'https://idp.example', clientId: 'ehr', subject: 'user-8', fhirUser: 'Practitioner/8' };
const PATIENT_APP = { issuer: 'https://idp.example', clientId: 'portal', subject: 'user-9' };

/** What happened, in the order the trail recorded it (the proxy's times may interleave). */
const HAPPENED: [string, Partial<AuditRecord>][] = [
  ['2026-12-01T09:00:00.000Z', { requestId: 'r1', who: PRACTITIONER_7, patients: ['Patient/123'] }],
  ['2026-12-01T09:05:00.000Z', { requestId: 'r2', who: PRACTITIONER_8, path: 'Patient/456', interaction: { kind: 'read', resourceType: 'Patient', id: '456' }, patients: ['Patient/456'] }],
  [
    '2026-12-02T14:30:00.000Z',
    {
      requestId: 'r3',
      who: PATIENT_APP,
      path: 'Observation',
      query: 'patient=123&code=8867-4',
      interaction: { kind: 'search-type', resourceType: 'Observation' },
      patients: ['Patient/123'],
      status: 403,
      outcome: 'refused',
      refusal: { reason: 'insufficient-scope', diagnostics: "the token's scopes do not grant Observation reads" },
    },
  ],
  ['2026-12-02T14:29:59.000Z', { requestId: 'r4', who: PRACTITIONER_8, patients: ['Patient/456'], entities: ['Observation/77'] }],
  [
    '2026-12-03T08:00:00.000Z',
    { requestId: 'r5', who: PRACTITIONER_7, method: 'PUT', path: 'Patient/123', interaction: { kind: 'update', resourceType: 'Patient', id: '123' }, patients: ['Patient/123'] },
  ],
];

let dir: string;

beforeAll(async () => {
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'audit.js'))) throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json` first');
  dir = trailDir();
  let clock = 0;
  const trail = new AuditTrail({ dir, registry: new Registry(), log: keptLog().log, now: () => clock, maxFileBytes: 2500, commitIntervalMs: 60_000 });
  for (const [time, over] of HAPPENED) {
    clock = Date.parse(time) + 50;
    trail.record(readRecord({ time: new Date(time), ...over }));
    await trail.flush();
  }
  await trail.close();
});

test('the trail spans several files', () => {
  expect(trailFiles(dir).length).toBeGreaterThanOrEqual(3);
});

test('who touched Patient/123: a table of every event, rotated files too, by time', () => {
  const r = run('--dir', dir, '--patient', 'Patient/123');
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0].split(/\s{2,}/)).toEqual(['TIME', 'WHO', 'CLIENT', 'ACTION', 'WHAT', 'OUTCOME', 'REQUEST ID']);
  expect(lines.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
    ['2026-12-01T09:00:00.000Z', 'Practitioner/7', 'growth-chart', 'read', 'Observation/9', 'success', 'r1'],
    ['2026-12-02T14:30:00.000Z', 'user-9', 'portal', 'search-type', 'Observation?patient=123&code=8867-4', '403 insufficient-scope', 'r3'],
    ['2026-12-03T08:00:00.000Z', 'Practitioner/7', 'growth-chart', 'update', 'Patient/123', 'success', 'r5'],
  ]);
});

test('between two dates (whole days, UTC), the id alone naming the patient', () => {
  const r = run('--dir', dir, '--patient', '123', '--since', '2026-12-02', '--until', '2026-12-02', '--json');
  expect(r.status).toBe(0);
  const rows = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatchObject({
    time: '2026-12-02T14:30:00.000Z',
    who: 'user-9',
    client: 'portal',
    action: 'search-type',
    outcome: '403 insufficient-scope',
    detail: "403 insufficient-scope: the token's scopes do not grant Observation reads",
    requestId: 'r3',
    patients: ['Patient/123'],
  });
  expect(rows[0].id).toMatch(/^[0-9a-f-]{36}$/);
});

test('date-times, with a zone or in UTC, bound the answer to the millisecond', () => {
  const ids = (...args: string[]) =>
    run('--dir', dir, '--json', ...args)
      .stdout.trimEnd()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).requestId);
  expect(ids('--since', '2026-12-02T14:29:59', '--until', '2026-12-02T15:30:00+01:00')).toEqual(['r4', 'r3']);
  expect(ids('--since', '2026-12-02T14:29:59.001Z', '--until', '2026-12-02T14:30:00.000Z')).toEqual(['r3']);
});

test('by who: a client id, a token subject, a user reference', () => {
  const ids = (who: string) =>
    run('--dir', dir, '--json', '--who', who)
      .stdout.trimEnd()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l).requestId);
  expect(ids('growth-chart')).toEqual(['r1', 'r5']);
  expect(ids('user-8')).toEqual(['r2', 'r4']);
  expect(ids('Practitioner/8')).toEqual(['r2', 'r4']);
  expect(ids('nobody')).toEqual([]);
  const none = run('--dir', dir, '--who', 'nobody');
  expect(none).toEqual({ status: 0, stdout: '', stderr: `fhirguard audit: no event matches (5 read in ${trailFiles(dir).length} files)\n` });
});

test.each([
  [['--patient', 'Patient/123'], 'fhirguard audit: give the trail directory: --dir <dir> (or FHIRGUARD_AUDIT_DIR)\n'],
  [['--dir', '/nonexistent/trail'], 'fhirguard audit: --dir: cannot read /nonexistent/trail: ENOENT\n'],
  [['--dir', BIN], `fhirguard audit: --dir: ${BIN} is not a directory\n`],
  [['--dir', '.', '--since', 'yesterday'], "fhirguard audit: --since: 'yesterday' is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDThh:mm[:ss[.sss]][Z|±hh:mm], UTC when no zone is given)\n"],
  [['--dir', '.', '--until', '2026-02-30'], "fhirguard audit: --until: '2026-02-30' is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDThh:mm[:ss[.sss]][Z|±hh:mm], UTC when no zone is given)\n"],
  [['--dir', '.', '--since', '2026-12-03', '--until', '2026-12-01'], 'fhirguard audit: --since 2026-12-03 is not before --until 2026-12-01\n'],
  [['--dir', '.', '--patient', 'Observation/1'], "fhirguard audit: --patient: 'Observation/1' is not a patient reference (Patient/123, or the id alone)\n"],
  [['--dir', '.', 'extra'], "fhirguard audit: unexpected argument 'extra' (options only; see --help)\n"],
])('a usage error says what is wrong, exit 2: %j', (args, message) => {
  expect(run(...args)).toEqual({ status: 2, stdout: '', stderr: message });
});

test('an unknown option: exit 2 and the help', () => {
  const r = run('--patient-id', '1');
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/^fhirguard audit: Unknown option '--patient-id'/);
  expect(r.stderr).toContain('Usage: fhirguard audit --dir <trail dir>');
});

test('FHIRGUARD_AUDIT_DIR stands for --dir', () => {
  const r = spawnSync(process.execPath, [BIN, 'audit', '--who', 'ehr'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, FHIRGUARD_AUDIT_DIR: dir } });
  expect(r.status).toBe(0);
  expect(r.stdout.trimEnd().split('\n')).toHaveLength(3);
});

test('a damaged line is named on stderr and makes the exit status 1; an event written twice is one row; a torn last line is passed over', () => {
  const copy = trailDir();
  const files = trailFiles(dir);
  mkdirSync(copy, { mode: 0o700 });
  for (const f of files) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
  const first = readFileSync(path.join(dir, files[0]), 'utf8').split('\n')[0];
  appendFileSync(path.join(copy, files[1]), `${first}\nnot json\n`);
  appendFileSync(path.join(copy, files[files.length - 1]), '{"resourceType":"AuditEv');
  const r = run('--dir', copy, '--patient', 'Patient/123', '--json');
  expect(r.status).toBe(1);
  const lines = readFileSync(path.join(dir, files[1]), 'utf8').trimEnd().split('\n').length;
  expect(r.stderr).toBe(`fhirguard audit: ${files[1]} line ${lines + 2}: not JSON: Unexpected token 'o', "not json" is not valid JSON\n`);
  expect(
    r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).requestId),
  ).toEqual(['r1', 'r3', 'r5']);
});

test('--help lists the options', () => {
  const r = run('--help');
  expect(r.status).toBe(0);
  for (const o of ['--dir', '--patient', '--who', '--since', '--until', '--json']) expect(r.stdout).toContain(o);
});
