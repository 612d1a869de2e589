// fhirguard run from a checkout inside a directory only root may enter (a clone in /root,
// mode 0700): the checkout is bind-mounted (read-only) into a fresh 0700 directory and run
// from there. `fhirguard up` must serve (its proxy and its workers run as their own system users, from the
// install staged into the state directory, not from the checkout), and record's crashing
// writer, which runs as the workers' user, must leave its crashed commit. Root only (it
// mounts, and `up` confines its workers); without root the tests are skipped, loudly.

import { resolveIdentities } from '../../src/enforce/identities';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO, shortTempDir } from '../helpers/confined';
import { freePort } from '../grafana/prometheus-server';
import { poll } from '../helpers/poll';

jest.setTimeout(360_000);

const ROOT = process.getuid?.() === 0;
if (!ROOT) console.warn('any-location.test: NOT ROOT: these tests mount a checkout into a 0700 directory and run `up` as root; skipped');
const rootTest = ROOT ? test : test.skip;

let home: string; // the 0700 directory, as /root is
let clone: string; // the checkout inside it
let mounted = false;
const cleanups: Array<() => void> = [];

function isMounted(p: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p);
}

beforeAll(() => {
  if (!ROOT) return;
  home = shortTempDir('home');
  chmodSync(home, 0o700);
  clone = path.join(home, 'fhirguard');
  mkdirSync(clone);
  execFileSync('mount', ['--bind', REPO, clone]);
  mounted = true;
  execFileSync('mount', ['-o', 'remount,bind,ro', clone]);
  // What the old code did: the worker identity cannot reach the checkout from here.
  expect(spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(clone, 'package.json'))})`], { uid: 65534, gid: 65534 }).status).not.toBe(0);
});

afterAll(() => {
  for (const c of cleanups.reverse()) c();
  if (!mounted) return;
  // Never remove a tree while the checkout is mounted in it: unmount, then an empty rmdir.
  spawnSync('umount', [clone]);
  if (isMounted(clone)) spawnSync('umount', ['-l', clone]);
  if (isMounted(clone)) throw new Error(`${clone} is still mounted: left in place`);
  rmdirSync(clone);
  rmSync(home, { recursive: true, force: true });
});

/** A state directory the proxy can reach (its parents open, as /var/lib is). */
function stateDirFor(name: string): string {
  const parent = shortTempDir(name);
  chmodSync(parent, 0o755);
  cleanups.push(() => rmSync(parent, { recursive: true, force: true }));
  return path.join(parent, 'state');
}

/** Processes whose command line names `word` (this test's own state directory). */
function pidsNaming(word: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .some((a) => a.includes(word));
      } catch {
        return false;
      }
    })
    .map(Number);
}

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[1]);
}

async function readyz(admin: string, up: ChildProcess, log: () => string): Promise<void> {
  await poll('up to become ready', async () => (await fetch(`${admin}/readyz`)).status === 200, {
    timeoutMs: 300_000,
    intervalMs: 250,
    abort: () => (up.exitCode !== null || up.signalCode !== null ? `up exited (${up.exitCode ?? up.signalCode})` : undefined),
    detail: log,
  });
}

rootTest('`fhirguard up` from the checkout in the 0700 directory serves a create and a read through its proxy', async () => {
  const stateDir = stateDirFor('loc-up');
  const [listen, admin] = [await freePort(), await freePort()];
  // As `make up` runs it: the checkout's bin, from the checkout, with its shipped policy.
  const up = spawn(process.execPath, [path.join(clone, 'bin', 'fhirguard'), 'up', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--state-dir', stateDir, '--log-level', 'warn'], {
    cwd: clone,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  up.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  up.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  cleanups.push(() => {
    // Should up fail to stop them, the processes of this state directory go by pid, and their containers.
    for (const pid of pidsNaming(stateDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    const runcRoot = path.join(stateDir, 'runc');
    if (existsSync(runcRoot)) {
      const ids = spawnSync('runc', ['--root', runcRoot, 'list', '-q'], { encoding: 'utf8' }).stdout ?? '';
      for (const id of ids.split('\n').filter(Boolean)) spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
    }
  });
  try {
    await readyz(`http://127.0.0.1:${admin}`, up, () => log);
    const base = `http://127.0.0.1:${listen}/fhir`;
    const created = await fetch(`${base}/Patient`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Anywhere' }] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const read = await fetch(`${base}/Patient/${id}`);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ resourceType: 'Patient', id, name: [{ family: 'Anywhere' }] });

    // The proxy runs as its own identity from the staged install, which is root's and closed to writes.
    const staged = path.join(stateDir, 'install');
    const proxies = pidsNaming(path.join(staged, 'bin', 'fhirguard')).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('proxy'));
    expect(proxies).toHaveLength(1);
    expect(uidOf(proxies[0])).toBe(resolveIdentities({}, false).proxy.uid);
    for (const rel of ['.', 'bin/fhirguard', 'dist/src/cli/index.js', 'node_modules/better-sqlite3/package.json']) {
      const st = lstatSync(path.join(staged, rel));
      expect({ rel, uid: st.uid, writableByOthers: (st.mode & 0o022) !== 0 }).toEqual({ rel, uid: 0, writableByOthers: false });
    }
    expect(log).toMatch(/signed tiers read, write, ops for the install staged in \S+\/install/);
  } finally {
    up.kill('SIGTERM');
  }
  expect(await exited).toBe(0);
});

rootTest("record's crashing writer runs as the workers' user from the staged install and leaves a hot journal", () => {
  const stateDir = stateDirFor('loc-crash');
  const dataDir = path.join(path.dirname(stateDir), 'data');
  mkdirSync(dataDir, { mode: 0o750 });
  // As record does it (cli/record.ts, tier-run.ts), with the checkout's own compiled code.
  const script = `
    const { runnableInstall } = require(${JSON.stringify(path.join(clone, 'dist/src/install/stage.js'))});
    const { leaveCrashedCommit } = require(${JSON.stringify(path.join(clone, 'dist/src/record/writer-crash.js'))});
    const Database = require(${JSON.stringify(path.join(clone, 'node_modules/better-sqlite3'))});
    const db = process.argv[1];
    const d = new Database(db);
    d.exec('CREATE TABLE t (x)');
    d.close();
    require('fs').chownSync(db, 65534, 65534);
    require('fs').chownSync(require('path').dirname(db), 65534, 65534);
    const install = runnableInstall(process.argv[2]);
    leaveCrashedCommit(db, { uid: 65534, gid: 65534 }, install).then(
      (r) => console.log(JSON.stringify({ install, ...r })),
      (err) => { console.error(err.message); process.exit(1); },
    );`;
  const db = path.join(dataDir, 'fhirguard.db');
  const r = spawnSync(process.execPath, ['-e', script, db, stateDir], { cwd: clone, encoding: 'utf8' });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
  const out = JSON.parse(r.stdout) as { install: string; dbBytesBefore: number; dbBytesAfter: number };
  expect(out.install).toBe(path.join(stateDir, 'install'));
  expect(out.dbBytesAfter).toBeGreaterThan(out.dbBytesBefore);
  expect(statSync(`${db}-journal`).uid).toBe(65534);
});
