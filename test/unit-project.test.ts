// The `unit` jest project (test/projects.js) is the fast loop: its files, and the test modules
// they import, start no process, open no listener, ask for no root and reach no network. This
// reads them and says which file breaks that; it does not time anything.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports -- a plain JS module jest.config.js shares
const { UNIT } = require('./projects') as { UNIT: string[] };

const TEST = __dirname;
const REPO = path.resolve(TEST, '..');

/** What a unit test file may not do, by what its source says. */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/['"]node:child_process['"]|['"]child_process['"]/, 'starts processes'],
  [/\.listen\(/, 'opens a listener'],
  [/getuid\(/, 'depends on root'],
  [/\bfetch\(|['"]undici['"]|node:http['"]/, 'speaks HTTP'],
  [/requireEnforcement|startAgent|startProxy|startWorker/, 'starts fhirguard'],
];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? testFiles(p) : e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** The file and every module under test/ it imports, transitively. */
function withTestImports(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/from '(\.{1,2}\/[^']+)'|require\('(\.{1,2}\/[^']+)'\)/g)) {
    const spec = m[1] ?? m[2];
    const target = path.resolve(path.dirname(file), spec);
    if (!target.startsWith(TEST + path.sep)) continue;
    for (const candidate of [target, `${target}.ts`, `${target}.js`, path.join(target, 'index.ts')]) {
      try {
        readFileSync(candidate);
        withTestImports(candidate, seen);
        break;
      } catch {
        // not this one
      }
    }
  }
  return [...seen];
}

const unitFiles = testFiles(TEST).filter((f) => UNIT.some((u) => new RegExp(`${u}.*\\.test\\.ts$`).test(f)));

test('the unit project holds the pure concerns, and not every file', () => {
  const rel = unitFiles.map((f) => path.relative(REPO, f));
  for (const dir of ['test/fhir/', 'test/policy/', 'test/validate/', 'test/metrics/']) expect({ dir, some: rel.some((f) => f.startsWith(dir)) }).toEqual({ dir, some: true });
  expect(rel).not.toContain('test/validate/ips-package.test.ts');
  expect(unitFiles.length).toBeLessThan(testFiles(TEST).length);
});

test.each(unitFiles.map((f) => [path.relative(REPO, f), f]))('%s starts nothing, listens on nothing, needs no root or network', (_rel, file) => {
  const found = withTestImports(file).flatMap((f) => {
    const text = readFileSync(f, 'utf8');
    return FORBIDDEN.filter(([re]) => re.test(text)).map(([, what]) => `${path.relative(REPO, f)} ${what}`);
  });
  expect(found).toEqual([]);
});
