// An error that no command expected reaches the operator as one line, never a stack trace
// (the stack only with FHIRGUARD_DEBUG=1). The error is made by a preloaded module that swaps
// the validate command's run for one that throws, so the real bin/fhirguard handles it.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FHIRGUARD = path.resolve(__dirname, '..', '..', 'bin', 'fhirguard');

function preload(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fg-cli-'));
  const file = path.join(dir, 'throwing-validate.js');
  writeFileSync(
    file,
    `const Module = require('module');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const m = load.apply(this, arguments);
  if (request === './validate' && m.validateCommand) {
    return { validateCommand: { ...m.validateCommand, run: async () => { throw new Error('disk on fire\\nsecond line'); } } };
  }
  return m;
};
`,
  );
  return file;
}

function run(env: Record<string, string>): { status: number | null; stderr: string } {
  const r = spawnSync(FHIRGUARD, ['validate', 'x.json'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: `--require ${preload()}`, ...env } });
  return { status: r.status, stderr: r.stderr };
}

test('an unexpected error is one line that says how to see more', () => {
  expect(run({ FHIRGUARD_DEBUG: '' })).toEqual({ status: 1, stderr: 'fhirguard: unexpected error: disk on fire (FHIRGUARD_DEBUG=1 shows where)\n' });
});

test('FHIRGUARD_DEBUG=1 adds the stack', () => {
  const r = run({ FHIRGUARD_DEBUG: '1' });
  expect(r.status).toBe(1);
  expect(r.stderr.split('\n')[0]).toBe('fhirguard: unexpected error: disk on fire');
  expect(r.stderr).toMatch(/\n {4}at .*\n/);
});
