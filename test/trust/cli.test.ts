// `fhirguard keygen` and `fhirguard sign` as an operator runs them (the built CLI): exit 0
// when done, 1 when nothing was signed or written (a key that exists, a key that is not an
// Ed25519 private key, an image its scan gate refuses), 2 on a usage error; what sign writes
// verifies under the key keygen made, for the real install; and `fhirguard up`'s own
// signing key and statements (made once, kept, checked against each other).

import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { installRoot } from '../../src/install/root';
import { parseEnvelope, verifyEnvelope } from '../../src/trust/dsse';
import { TrustGate } from '../../src/trust/start-check';
import { loadTrustedKeys } from '../../src/trust/keys';
import { loadPolicyHashed } from '../../src/trust/options';
import { selfSign } from '../../src/trust/self-sign';
import { parseStatement } from '../../src/trust/statement';
import { InstallSubject } from '../../src/trust/subject';
import { FHIRGUARD, REPO, removeDir, shortTempDir } from '../helpers/confined';
import { makeFixture } from './fixture';

jest.setTimeout(60_000);

let dir: string;
beforeAll(() => (dir = shortTempDir('trustcli')));
afterAll(() => removeDir(dir));

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(FHIRGUARD, args, { encoding: 'utf8', env: { ...process.env, FHIRGUARD_SIGNING_KEY: '', FHIRGUARD_KEY_DIR: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fhirguard keygen', () => {
  test('writes a pair (private 0600) and prints its key id; a second run keeps it and exits 1', () => {
    const out = path.join(dir, 'keys');
    const first = run(['keygen', '--out', out, '--name', 'ops']);
    expect(first.code).toBe(0);
    const keyid = /key id\s+([0-9a-f]{64})/.exec(first.stdout)?.[1];
    expect(loadTrustedKeys(path.join(out, 'ops.pub')).map((k) => k.keyid)).toEqual([keyid]);
    expect(statSync(path.join(out, 'ops.key')).mode & 0o777).toBe(0o600);
    const key = readFileSync(path.join(out, 'ops.key'));
    const again = run(['keygen', '--out', out, '--name', 'ops']);
    expect({ code: again.code, stdout: again.stdout }).toEqual({ code: 1, stdout: '' });
    expect(again.stderr).toMatch(/ops\.key exists; keep it, or remove it to make a new key/);
    expect(readFileSync(path.join(out, 'ops.key'))).toEqual(key);
  });

  test('usage errors exit 2; a directory it cannot write exits 1', () => {
    expect(run(['keygen', '--out', dir, '--name', '../escape'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--name "\.\.\/escape": letters, digits/) });
    expect(run(['keygen', '--bogus'])).toMatchObject({ code: 2 });
    const file = path.join(dir, 'a-file');
    writeFileSync(file, '');
    expect(run(['keygen', '--out', path.join(file, 'sub')])).toMatchObject({ code: 1, stderr: expect.stringMatching(/ENOTDIR/) });
  });
});

describe('fhirguard sign', () => {
  let key: string;
  beforeAll(() => {
    expect(run(['keygen', '--out', path.join(dir, 'signer'), '--name', 'ops']).code).toBe(0);
    key = path.join(dir, 'signer', 'ops.key');
  });

  test('signs the chosen tiers for this install; the statements verify and name the files signed', () => {
    const attestations = path.join(dir, 'att');
    const r = run(['sign', '--key', key, '--tier', 'read', '--tier', 'ops', '--attestations', attestations, '--expires', '2999-01-01']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(
      /^read: \S+\/att\/read\.dsse\.json\n {2}install fhirguard-install sha256:[0-9a-f]{64}\n {2}seccomp seccomp\/read\.json sha256:[0-9a-f]{64}\n {2}ebpf {4}ebpf\/read\.json sha256:[0-9a-f]{64}\n {2}policy {2}policy\.yaml sha256:[0-9a-f]{64}\n {2}key [0-9a-f]{64}, expires 2999-01-01\nops: /,
    );
    expect(existsSync(path.join(attestations, 'write.dsse.json'))).toBe(false);
    const trusted = loadTrustedKeys(path.join(dir, 'signer', 'ops.pub'));
    const env = parseEnvelope(readFileSync(path.join(attestations, 'ops.dsse.json'), 'utf8'));
    const v = verifyEnvelope(env, trusted);
    expect(v?.key.keyid).toBe(trusted[0].keyid);
    const st = parseStatement(v!.payload);
    expect(st.predicate).toMatchObject({ tier: 'ops', subjectKind: 'install', expires: '2999-01-01', policy: { name: 'policy.yaml' } });
    expect(st.predicate.policy.digest.sha256).toBe(loadPolicyHashed(path.join(REPO, 'profiles', 'policy.yaml')).sha256);
  });

  test.each<[string, string[], RegExp]>([
    ['no --key', [], /--key <file> is required/],
    ['a bad --expires', ['--expires', 'soon'], /--expires "soon": a date/],
    ['a date-time without zone', ['--expires', '2030-01-01T00:00:00'], /--expires "2030-01-01T00:00:00"/],
    ['an unknown tier', ['--tier', 'admin'], /has no tier admin \(tiers: read, write, ops\)/],
    ['--image without --advisories', ['--image', '/nonexistent/layout:v1'], /--image needs --advisories <dir>/],
    ['an unknown option', ['--force'], /./],
  ])('usage error, exit 2: %s', (_what, args, message) => {
    const withKey = args.includes('--key') || _what === 'no --key' ? args : ['--key', key, ...args];
    const r = run(['sign', ...withKey, '--attestations', path.join(dir, 'never')]);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
    expect(r.stderr).toMatch(message);
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });

  test('a tier served by its own upstreams, and a policy that does not load, are usage errors', () => {
    const policy = readFileSync(path.join(REPO, 'profiles', 'policy.yaml'), 'utf8').replace(/(- name: ops\n) {4}workers: 1\n/, '$1    upstreams: ["http://127.0.0.1:9301"]\n');
    expect(policy).toContain('upstreams: ["http://127.0.0.1:9301"]');
    writeFileSync(path.join(dir, 'upstream.yaml'), policy);
    const r = run(['sign', '--key', key, '--policy', path.join(dir, 'upstream.yaml'), '--tier', 'ops', '--attestations', path.join(dir, 'never')]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/tier ops is served by its upstreams/) });
    writeFileSync(path.join(dir, 'broken.yaml'), 'tiers: [');
    expect(run(['sign', '--key', key, '--policy', path.join(dir, 'broken.yaml')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/policy rejected/) });
  });

  test('a key that is missing, public, or not Ed25519 signs nothing: exit 1', () => {
    const rsa = path.join(dir, 'rsa.key');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    for (const [k, message] of [
      [path.join(dir, 'nope.key'), /not a private key in PEM: ENOENT/],
      [path.join(dir, 'signer', 'ops.pub'), /not a private key in PEM/],
      [rsa, /Ed25519 keys only/],
    ] as const) {
      const r = run(['sign', '--key', k, '--tier', 'read', '--attestations', path.join(dir, 'never')]);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });

  test('an attestations directory it cannot write: exit 1', () => {
    const file = path.join(dir, 'att-file');
    writeFileSync(file, '');
    const r = run(['sign', '--key', key, '--tier', 'read', '--attestations', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/EEXIST|ENOTDIR/);
  });
});

describe("fhirguard up's own signing", () => {
  test('makes a key once (0600 in a 0700 directory), signs every local tier, keeps the key on the next start', async () => {
    const f = await makeFixture(path.join(dir, 'up-fixture'));
    const stateDir = path.join(dir, 'up-state');
    const o = { stateDir, policy: f.policy, policyFile: f.policyFile, profilesDir: f.profilesDir, install: f.install };
    const first = await selfSign(o);
    expect(first).toEqual({
      publicKey: path.join(stateDir, 'trust', 'up.pub'),
      attestations: path.join(stateDir, 'trust', 'attestations'),
      keyid: expect.stringMatching(/^[0-9a-f]{64}$/),
      created: true,
      tiers: ['read', 'write', 'ops'],
    });
    expect(statSync(path.join(stateDir, 'trust')).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(stateDir, 'trust', 'up.key')).mode & 0o777).toBe(0o600);
    // What it signed verifies through the agent's gate (the fixture's install as the subject).
    const gate = new TrustGate({
      trustedKeys: loadTrustedKeys(first.publicKey),
      attestations: first.attestations,
      profilesDir: f.profilesDir,
      policyFile: f.policyFile,
      loadedPolicySha256: f.policySha256,
      subject: new InstallSubject(f.install),
      log: pino({ level: 'silent' }),
    });
    for (const t of first.tiers) await expect(gate.admit(f.tier(t))).resolves.toBeDefined();
    chmodSync(path.join(stateDir, 'trust'), 0o755);
    const second = await selfSign(o);
    expect(second).toEqual({ ...first, created: false });
    expect(statSync(path.join(stateDir, 'trust')).mode & 0o777).toBe(0o700);
    // A public key that is not the private key's: said, not signed over.
    writeFileSync(first.publicKey, readFileSync(f.publicKey));
    await expect(selfSign(o)).rejects.toThrow(/up\.pub is not the public key of \S+up\.key: remove both/);
    expect(installRoot()).toBe(REPO);
  });
});
