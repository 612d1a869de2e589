// The product reads nothing outside its own install: no default points at ../shared (the
// data beside the repository exists on the developers' machines only). Docker's default
// allow list is shipped in profiles/reference/; `record` without a workload needs --corpus
// and says so in one line. Tests and benchmarks may still read ../shared.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { installRoot } from '../../src/install/root';
import { defaultDockerAllowFile, DOCKER_DEFAULT_ALLOWED_COUNT, loadDockerDefault } from '../../src/profile/reference';
import { FHIRGUARD, REPO } from '../helpers/confined';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

test('no code under src/ names ../shared (comments may say where data came from)', () => {
  const hits: string[] = [];
  for (const file of sources(path.join(REPO, 'src'))) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '').trim();
        if (code.startsWith('*') || code.startsWith('/*')) return;
        if (/\.\.\/shared|['"`]shared['"`]/.test(code)) hits.push(`${path.relative(REPO, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(hits).toEqual([]);
});

test("Docker's default allow list is shipped in the install, with its source and licence", () => {
  const file = defaultDockerAllowFile();
  expect(file.startsWith(`${installRoot()}/`)).toBe(true);
  expect(loadDockerDefault(file).allowed.size).toBe(DOCKER_DEFAULT_ALLOWED_COUNT);
  const readme = readFileSync(path.join(path.dirname(file), 'README.md'), 'utf8');
  expect(readme).toMatch(/moby\/moby, `profiles\/seccomp\/default\.json`/);
  expect(readme).toMatch(/Apache License 2\.0/);
  const shared = path.resolve(REPO, '..', 'shared', 'reference', 'docker-default-allow.txt');
  if (existsSync(shared)) expect(readFileSync(file, 'utf8')).toBe(readFileSync(shared, 'utf8'));
  else console.warn(`self-contained.test: no ${shared} here: the shipped copy was not compared with it`);
});

test('record without a workload needs --corpus: one line, exit 2, before anything starts', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [FHIRGUARD, 'record', '--tier', 'read', ...args], { encoding: 'utf8' });
  const none = run([]);
  expect({ status: none.status, stdout: none.stdout }).toEqual({ status: 2, stdout: '' });
  expect(none.stderr).toBe('fhirguard record: give --corpus <dir> (Synthea transaction bundles, one patient a file) for the default workloads, or --workload <file>\n');
  const missing = run(['--corpus', '/nonexistent/corpus']);
  expect({ status: missing.status, stderr: missing.stderr }).toEqual({
    status: 2,
    stderr: 'fhirguard record: no corpus at /nonexistent/corpus: give --corpus <dir> of Synthea transaction bundles, or --workload <file>\n',
  });
});
