// Where fhirguard cannot run from where it is asked to, one line says why and what to do,
// and nothing starts: `up` not root with a state directory it cannot write, and `record`
// with a state directory whose parents its workers' user cannot enter (the staged install
// would be out of their reach). Root only (the first runs fhirguard as 65534).

import { resolveIdentities } from '../../src/enforce/identities';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { stageInstall } from '../../src/install/stage';
import { FHIRGUARD, REPO, removeDir, shortTempDir } from '../helpers/confined';

const ROOT = process.getuid?.() === 0;
if (!ROOT) console.warn('refusals.test: NOT ROOT: these tests run fhirguard as another user and stage installs; skipped');
const rootTest = ROOT ? test : test.skip;

let dir: string;
beforeEach(() => {
  dir = shortTempDir('refusals');
});
afterEach(() => removeDir(dir));

rootTest('up, not root, with a state directory it cannot write: one line, exit 2, no process started', () => {
  chmodSync(dir, 0o755);
  // Run as 65534 from a staged copy (the checkout may be closed to that user).
  const bin = path.join(stageInstall(REPO, path.join(dir, 'install')).root, 'bin', 'fhirguard');
  const stateDir = path.join(dir, 'root-only', 'state');
  mkdirSync(path.dirname(stateDir), { mode: 0o755 });
  const r = spawnSync(process.execPath, [bin, 'up', '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    uid: 65534,
    gid: 65534,
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 2, stdout: '' });
  expect(r.stderr).toBe(`fhirguard up: cannot write the state directory ${stateDir} (EACCES): run up as root, or give --state-dir <a directory you can write>\n`);
  expect(existsSync(stateDir)).toBe(false);
});

rootTest("record with a state directory its workers' user cannot reach: one line, exit 2, nothing recorded", () => {
  // dir is 0700, as mkdtemp makes it: the install staged in dir/state is closed to 65534.
  const stateDir = path.join(dir, 'state');
  const out = path.join(dir, 'out');
  const r = spawnSync(process.execPath, [FHIRGUARD, 'record', '--tier', 'read', '--corpus', dir, '--state-dir', stateDir, '--out', out], { encoding: 'utf8', timeout: 120_000 });
  expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 2, stdout: '' });
  expect(r.stderr).toBe(
    `fhirguard record: the recorded workers (uid ${resolveIdentities({}, false).writer.uid}) cannot reach the install staged in ${stateDir}/install: ${dir} is closed to them; give a --state-dir they can reach, or open ${dir} (chmod o+x)\n`,
  );
  expect(existsSync(out)).toBe(false);
});
