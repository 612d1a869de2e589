// `fhirguard validate` as operators run it: the real CLI (bin/fhirguard on the compiled
// dist/, built by `npx tsc -p tsconfig.json`), its output formats and exit status.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'fhirguard');
const FIX = path.join('test', 'fixtures', 'validate', 'cli');
const EXAMPLE = 'http://fhirguard.example/fhir/StructureDefinition/fhirguard-example-patient';

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'validate', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'validate.js'))) {
    throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json` first');
  }
});

test('a valid file: human output, exit 0', () => {
  const r = run(path.join(FIX, 'valid-patient.json'));
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(`${path.join(FIX, 'valid-patient.json')}: valid\n`);
});

test('--json: one object per line and file, paths as given, exit 1 when any is invalid', () => {
  const files = [path.join(FIX, 'valid-patient.json'), path.join(FIX, 'invalid-observation.json'), path.join(FIX, 'not-json.txt')];
  const r = run('--json', ...files);
  expect(r.status).toBe(1);
  const lines = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(lines.map((l) => [l.file, l.valid])).toEqual([
    [files[0], true],
    [files[1], false],
    [files[2], false],
  ]);
  expect(lines[0].issues).toEqual([]);
  const obs = lines[1].issues.map((i: { severity: string; code: string; expression: string }) => [i.severity, i.code, i.expression]);
  expect(obs).toEqual([
    ['error', 'code-invalid', 'Observation.status'],
    ['error', 'invariant', 'Observation.value.ofType(Quantity)'],
    ['error', 'value', 'Observation.effective.ofType(dateTime)'],
    ['error', 'structure', 'Observation.colour'],
  ]);
  for (const i of lines[1].issues) expect(Object.keys(i).sort()).toEqual(['code', 'diagnostics', 'expression', 'severity']);
  expect(lines[2].issues[0].diagnostics).toMatch(/^not JSON/);
});

test('human output lists each issue under its file', () => {
  const r = run(path.join(FIX, 'invalid-observation.json'));
  expect(r.status).toBe(1);
  const [head, ...issues] = r.stdout.trimEnd().split('\n');
  expect(head).toBe(`${path.join(FIX, 'invalid-observation.json')}: INVALID (4 errors)`);
  expect(issues).toHaveLength(4);
  expect(issues[0]).toMatch(/^ {2}error +code-invalid +Observation\.status: /);
});

test('a file that is not there is a result, not a crash', () => {
  const r = run('--json', 'no-such-file.json');
  expect(r.status).toBe(1);
  expect(JSON.parse(r.stdout)).toMatchObject({ file: 'no-such-file.json', valid: false, issues: [{ severity: 'fatal', code: 'not-found' }] });
});

test('--profile validates against a custom profile from profiles/fhir', () => {
  const inside = run('--profile', EXAMPLE, path.join(FIX, 'valid-patient.json'));
  expect(inside.status).toBe(0);
  const r = run('--json', '--profile', EXAMPLE, path.join(FIX, 'patient-outside-profile.json'));
  expect(r.status).toBe(1);
  const out = JSON.parse(r.stdout);
  expect(out.valid).toBe(false);
  expect(out.issues.map((i: { code: string; expression: string }) => [i.code, i.expression])).toEqual([
    ['value', 'Patient.active'],
    ['required', 'Patient.birthDate'],
  ]);
});

test('without --profile the same file is valid R4', () => {
  expect(run(path.join(FIX, 'patient-outside-profile.json')).status).toBe(0);
});

test('no file is a usage error', () => {
  const r = run();
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/at least one file/);
});
