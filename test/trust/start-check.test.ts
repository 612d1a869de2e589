// The check before every worker start (src/trust/start-check.ts) over real files: statements signed
// with a key from keygen, the shipped profiles and policy copied, a small install tree as
// the subject. Each artifact is tampered with in turn and the start is refused with its own
// reason (a metric label) and a message naming what differs; putting it back admits the
// tier again. The profiles a start runs under are parsed from the very bytes that were
// hashed, and a refused start never reaches the launcher.

import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { StartRefusedError, type WorkerHandle, type WorkerLauncher, type WorkerSlot } from '../../src/agent/launchers';
import { loadTierProfiles, type TierProfiles } from '../../src/enforce/tier-profiles';
import { signEnvelope } from '../../src/trust/dsse';
import { TrustGate, TrustRefusal, VerifyingLauncher, statementPath } from '../../src/trust/start-check';
import { loadSigningKey, writeKeyPair } from '../../src/trust/keys';
import { REFUSAL_REASONS } from '../../src/trust/reasons';
import { PAYLOAD_TYPE } from '../../src/trust/statement';
import { ImageSubject, serverArtifacts, ServerSubject } from '../../src/trust/subject';
import { loadPolicyHashed } from '../../src/trust/options';
import { signTier, tierSigningSubject, writeEnvelope } from '../../src/trust/sign';
import { removeDir, shortTempDir } from '../helpers/confined';
import { makeFixture, type Fixture } from './fixture';

let f: Fixture;

beforeEach(async () => {
  f = await makeFixture(shortTempDir('gate'));
  for (const t of ['read', 'write', 'ops']) await f.sign(t);
});

afterEach(() => removeDir(f.dir));

/** The refusal a start of `tier` gets from `gate` (fails the test when it is admitted). */
async function refusal(gate: TrustGate, tier = 'read'): Promise<TrustRefusal> {
  const err = await gate.admit(f.tier(tier)).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof TrustRefusal)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err;
}

/** Runs `edit`, expects `reason` from a fresh check, then `undo` and the tier admitted again. */
async function tampered(reason: string, message: RegExp, edit: () => unknown, undo: () => void, tier = 'read', gate = f.gate()): Promise<void> {
  await gate.admit(f.tier(tier));
  const before = gate.report(tier).refusals[reason as never] ?? 0;
  await edit();
  const r = await refusal(gate, tier);
  expect({ reason: r.reason, tier: r.tier, check: r.check }).toEqual({ reason, tier, check: 'trust' });
  expect(r.message).toMatch(message);
  expect(gate.report(tier)).toMatchObject({ status: 'refused', reason, message: r.message, refusals: { [reason]: before + 1 } });
  undo();
  await gate.admit(f.tier(tier));
  expect(gate.report(tier)).toMatchObject({ status: 'verified', refusals: { [reason]: before + 1 } });
}

/** Appends a byte to a file; returns how to put it back. */
function appendTo(file: string): () => void {
  const before = readFileSync(file);
  writeFileSync(file, Buffer.concat([before, Buffer.from(' ')]));
  return () => writeFileSync(file, before);
}

function editing(file: string): { edit: () => void; undo: () => void } {
  let undo = (): void => undefined;
  return { edit: () => (undo = appendTo(file)), undo: () => undo() };
}

test('a signed tier is admitted: its report names the key and the subject', async () => {
  const gate = f.gate();
  expect(gate.report('read')).toEqual({ status: 'pending', refusals: {} });
  const profiles = await gate.admit(f.tier('read'));
  expect(profiles).toEqual(loadTierProfiles(f.profilesDir, 'read', true));
  const subject = await f.subject.current();
  expect(gate.report('read')).toEqual({ status: 'verified', keyid: f.key.keyid, subject: { ...subject, kind: 'install' }, checkedAt: expect.any(String), refusals: {} });
  for (const t of ['write', 'ops']) await expect(gate.admit(f.tier(t))).resolves.toBeDefined();
});

test('an edited seccomp profile is refused (reason seccomp)', async () => {
  const e = editing(path.join(f.profilesDir, 'seccomp', 'read.json'));
  await tampered('seccomp', /^the seccomp profile seccomp\/read\.json is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}$/, e.edit, e.undo);
});

test('an edited eBPF profile is refused (reason ebpf)', async () => {
  const e = editing(path.join(f.profilesDir, 'ebpf', 'write.json'));
  await tampered('ebpf', /^the eBPF profile ebpf\/write\.json is sha256:/, e.edit, e.undo, 'write');
});

test('a profile a tier did not have before (it borrowed the shared one) is refused', async () => {
  // The ops tier's own files replaced by ... none: it borrows the write tier's profiles now.
  const gate = f.gate();
  const moved = ['seccomp', 'ebpf'].map((k) => path.join(f.profilesDir, k, 'ops.json'));
  await tampered(
    'seccomp',
    /seccomp\/write\.json is sha256:/,
    () => moved.forEach((m) => renameSync(m, `${m}.away`)),
    () => moved.forEach((m) => renameSync(`${m}.away`, m)),
    'ops',
    gate,
  );
});

test('an edited policy file is refused (reason policy), and so is an agent running another policy than the signed one', async () => {
  const e = editing(f.policyFile);
  await tampered('policy', /^the policy file policy\.yaml is sha256:/, e.edit, e.undo, 'ops');
  const r = await refusal(f.gate({ loadedPolicySha256: 'f'.repeat(64) }), 'ops');
  expect([r.reason, r.message]).toEqual(['policy', expect.stringMatching(/the agent runs a policy \(sha256:ffffffffffff\) other than the signed one: restart it/)]);
});

test('a changed install is refused (reason subject): a file edited, added, made executable, or another node binary', async () => {
  const gate = f.gate();
  const file = path.join(f.install, 'node_modules', 'pkg', 'index.js');
  const e = editing(file);
  await tampered('subject', /^the install is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12} \(fhirguard-install\)$/, e.edit, e.undo, 'read', gate);
  const added = path.join(f.install, 'dist', 'src', 'backdoor.js');
  await tampered(
    'subject',
    /the install is/,
    () => writeFileSync(added, ''),
    () => rmSync(added),
    'read',
    gate,
  );
  await tampered(
    'subject',
    /the install is/,
    () => chmodSync(file, 0o755),
    () => chmodSync(file, 0o644),
    'read',
    gate,
  );
  const n = editing(f.node);
  await tampered('subject', /the install is/, n.edit, n.undo, 'read', gate);
  // Something the workers do not mount is not part of it.
  writeFileSync(path.join(f.install, 'README.md'), 'docs');
  await expect(gate.admit(f.tier('read'))).resolves.toBeDefined();
  expect(gate.report('read').refusals).toEqual({ subject: 4 });
});

test('an image re-tagged to another manifest is refused (reason subject); an install statement does not cover an image', async () => {
  let digest = `sha256:${'a'.repeat(64)}`;
  const image = new ImageSubject('/layouts/worker:v1', async () => digest);
  await f.sign('read', { subject: image });
  const gate = f.gate({ subject: image });
  await tampered(
    'subject',
    /^the image \/layouts\/worker:v1 is sha256:bbbbbbbbbbbb, the statement signs sha256:aaaaaaaaaaaa/,
    () => (digest = `sha256:${'b'.repeat(64)}`),
    () => (digest = `sha256:${'a'.repeat(64)}`),
    'read',
    gate,
  );
  // write was signed for the install; its workers would run the image.
  const r = await refusal(gate, 'write');
  expect([r.reason, r.message]).toEqual(['subject', 'the statement signs the install, but workers run from the image']);
});

test("the image's scan report is bound (reason scan-report), and a waiver the signed scan relied on expires (reason waiver-expired)", async () => {
  const image = new ImageSubject('/layouts/worker:v1', async () => `sha256:${'a'.repeat(64)}`);
  let report = 'c'.repeat(64);
  const waivers = [
    { id: 'FGTEST-2025-0001', package: 'fastify', expires: '2030-06-30', reason: 'not reachable from a worker' },
    { id: 'CVE-2099-10003', expires: '2031-01-01T00:00:00Z', reason: 'fixed upstream soon' },
  ];
  await f.sign('read', { subject: image, scan: { sha256: 'c'.repeat(64), waivers } });
  let now = Date.parse('2030-06-30T23:59:00Z'); // the waiver's last day still holds
  const gate = f.gate({ subject: image, scanDigest: async () => report, now: () => now });
  await tampered(
    'scan-report',
    /^the image's scan report is sha256:dddddddddddd, the statement signs sha256:cccccccccccc$/,
    () => (report = 'd'.repeat(64)),
    () => (report = 'c'.repeat(64)),
    'read',
    gate,
  );
  await tampered(
    'waiver-expired',
    /^waiver FGTEST-2025-0001 expired at 2030-06-30$/,
    () => (now = Date.parse('2030-07-01T00:00:00Z')),
    () => (now = Date.parse('2030-06-01T00:00:00Z')),
    'read',
    gate,
  );
  now = Date.parse('2031-01-01T00:00:01Z');
  expect((await refusal(gate)).reason).toBe('waiver-expired');
  // A statement signed without a scan does not cover an image that has a scan report.
  await f.sign('write', { subject: image });
  const r = await refusal(f.gate({ subject: image, scanDigest: async () => report }), 'write');
  expect([r.reason, r.message]).toEqual(['scan-report', 'the image has a scan report the statement does not sign']);
});

test('a statement past its own expiry is refused (reason expired)', async () => {
  await f.sign('read', { expires: '2030-01-01T00:00:00Z' });
  let now = Date.parse('2029-12-31T23:59:59Z');
  const gate = f.gate({ now: () => now });
  await tampered(
    'expired',
    /^the statement expired at 2030-01-01T00:00:00Z$/,
    () => (now = Date.parse('2030-01-01T00:00:01Z')),
    () => (now = Date.parse('2029-01-01T00:00:00Z')),
    'read',
    gate,
  );
});

test("a tier's statement replaced by another tier's is refused (reason tier)", async () => {
  const file = statementPath(f.attestations, 'ops');
  const original = readFileSync(file);
  await tampered(
    'tier',
    /^the statement is for tier read, not ops$/,
    () => copyFileSync(statementPath(f.attestations, 'read'), file),
    () => writeFileSync(file, original),
    'ops',
  );
});

test('a missing statement is refused (reason unsigned)', async () => {
  const file = statementPath(f.attestations, 'write');
  const original = readFileSync(file);
  await tampered(
    'unsigned',
    /^tier write is not signed: no \S+\/attestations\/write\.dsse\.json$/,
    () => rmSync(file),
    () => writeFileSync(file, original),
    'write',
  );
});

test('a statement signed by a key the agent does not trust is refused (reason signature), and so is one with no signature', async () => {
  const file = statementPath(f.attestations, 'read');
  const original = readFileSync(file);
  const other = loadSigningKey(writeKeyPair(path.join(f.dir, 'other'), 'other').keyFile);
  const gate = f.gate();
  await tampered(
    'signature',
    /read\.dsse\.json: no signature verifies under a trusted key \(1 trusted\)$/,
    () => f.sign('read', { key: other }),
    () => writeFileSync(file, original),
    'read',
    gate,
  );
  const env = JSON.parse(original.toString());
  writeFileSync(file, JSON.stringify({ ...env, signatures: [] }));
  expect((await refusal(gate)).reason).toBe('signature');
  // The statement's bytes changed under a good signature (a digest rewritten by hand).
  const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString());
  statement.predicate.seccomp.digest.sha256 = 'e'.repeat(64);
  writeFileSync(file, JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }));
  expect((await refusal(gate)).reason).toBe('signature');
  expect(gate.report('read').refusals).toEqual({ signature: 3 });
});

test('malformed statements are refused (reason malformed): not JSON, not an envelope, another payloadType, a payload that is not a statement', async () => {
  const file = statementPath(f.attestations, 'read');
  const gate = f.gate();
  const cases: Array<[string | Buffer, RegExp]> = [
    ['{"payload": ', /not a DSSE envelope: not JSON/],
    ['[1,2]', /not a DSSE envelope: not a JSON object/],
    [JSON.stringify({ payload: '%%%', payloadType: PAYLOAD_TYPE, signatures: [] }), /not a DSSE envelope: payload is not base64/],
    [JSON.stringify(signEnvelope(Buffer.from('{}'), 'application/json', f.key)), /payloadType "application\/json", not application\/vnd\.in-toto\+json/],
    [JSON.stringify(signEnvelope(Buffer.from('not json'), PAYLOAD_TYPE, f.key)), /payload is not JSON/],
    [
      JSON.stringify(signEnvelope(Buffer.from('{"_type":"https://in-toto.io/Statement/v0.1"}'), PAYLOAD_TYPE, f.key)),
      /_type is "https:\/\/in-toto\.io\/Statement\/v0\.1", not https:\/\/in-toto\.io\/Statement\/v1/,
    ],
  ];
  for (const [text, message] of cases) {
    writeFileSync(file, text);
    const r = await refusal(gate);
    expect([r.reason, r.message]).toEqual(['malformed', expect.stringMatching(message)]);
  }
  expect(gate.report('read').refusals).toEqual({ malformed: cases.length });
});

test('an artifact that cannot be read is refused (reason unreadable)', async () => {
  const gate = f.gate();
  const seccomp = path.join(f.profilesDir, 'seccomp', 'read.json');
  renameSync(seccomp, `${seccomp}.away`);
  let r = await refusal(gate);
  expect([r.reason, r.message]).toEqual(['unreadable', expect.stringMatching(/^cannot read the seccomp profile \S+\/seccomp\/read\.json: ENOENT$/)]);
  renameSync(`${seccomp}.away`, seccomp);
  const file = statementPath(f.attestations, 'read');
  rmSync(file);
  mkdirSync(file);
  r = await refusal(gate);
  expect([r.reason, r.message]).toEqual(['unreadable', expect.stringMatching(/^cannot read \S+read\.dsse\.json: EISDIR$/)]);
});

test('a profile that does not load is not signed', async () => {
  writeFileSync(path.join(f.profilesDir, 'ebpf', 'ops.json'), '{"serve": ["not_a_syscall"]}');
  await expect(f.sign('ops')).rejects.toThrow(/serve: not x86_64 syscalls: not_a_syscall/);
});

test('every refusal reason is a fixed label', () => {
  expect(REFUSAL_REASONS).toEqual(['unsigned', 'malformed', 'signature', 'tier', 'expired', 'subject', 'seccomp', 'ebpf', 'policy', 'scan-report', 'waiver-expired', 'unreadable']);
});

describe('VerifyingLauncher', () => {
  class Recorder implements WorkerLauncher {
    readonly kind = 'container';
    launched: Array<TierProfiles | undefined> = [];
    async launch(_slot: WorkerSlot, profiles?: TierProfiles): Promise<WorkerHandle> {
      this.launched.push(profiles);
      return {} as WorkerHandle;
    }
  }
  const slot = (tier: string): WorkerSlot => ({ tier: f.tier(tier), id: `${tier}-0`, socketDir: '/nonexistent', socketPath: '/nonexistent/s', cgroupName: 'x' });

  test('starts the worker under the profiles it hashed, even when a file changes between the check and the start', async () => {
    const seccomp = path.join(f.profilesDir, 'seccomp', 'read.json');
    const ebpf = path.join(f.profilesDir, 'ebpf', 'read.json');
    const signed = loadTierProfiles(f.profilesDir, 'read', true);
    const signedDigest = createHash('sha256').update(readFileSync(seccomp)).update(readFileSync(ebpf)).digest('hex');
    // A racing writer: once the materials were read (the subject is computed after them),
    // both profiles are replaced by valid, looser ones.
    const racing = {
      kind: 'install' as const,
      current: async () => {
        const s = JSON.parse(readFileSync(seccomp, 'utf8'));
        s.defaultAction = 'SCMP_ACT_ALLOW';
        writeFileSync(seccomp, JSON.stringify(s));
        const e = JSON.parse(readFileSync(ebpf, 'utf8'));
        e.serve = [...e.serve, 'execve', 'connect'];
        writeFileSync(ebpf, JSON.stringify(e));
        return f.subject.current();
      },
    };
    const inner = new Recorder();
    const launcher = new VerifyingLauncher(inner, f.gate({ subject: racing }));
    await launcher.launch(slot('read'));
    expect(inner.launched).toHaveLength(1);
    expect(inner.launched[0]).toEqual(signed);
    expect(inner.launched[0]!.digest).toBe(signedDigest);
    expect(inner.launched[0]!.ebpf.serve).not.toContain('execve');
    // The next start reads the files again: refused.
    await expect(launcher.launch(slot('read'))).rejects.toMatchObject({ reason: 'seccomp' });
    expect(launcher.kind).toBe('container');
  });

  test('a refused start never reaches the launcher: a StartRefusedError of the trust check', async () => {
    const inner = new Recorder();
    const launcher = new VerifyingLauncher(inner, f.gate());
    appendTo(path.join(f.profilesDir, 'seccomp', 'read.json'));
    const err = await launcher.launch(slot('read')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartRefusedError);
    expect(err).toMatchObject({ reason: 'seccomp', check: 'trust', tier: 'read' });
    expect(inner.launched).toEqual([]);
  });
});

test("a tier its own server serves is signed for that server's files: a changed jar is refused (reason subject)", async () => {
  const jar = path.join(f.dir, 'server.jar');
  writeFileSync(jar, 'the server, version 1\n');
  const program = path.join(f.dir, 'server-program');
  writeFileSync(program, '#!/bin/sh\n', { mode: 0o755 });
  const policyFile = path.join(f.dir, 'server-policy.yaml');
  writeFileSync(
    policyFile,
    `tiers:\n  - name: read\n    server:\n      command: [${program}]\n      readOnly: [server.jar, ${f.dir}]\n  - name: write\nrules:\n  - resources: ["*"]\n    interactions: [read]\n    tier: read\n  - resources: ["*"]\n    interactions: [create]\n    tier: write\n`,
  );
  const { policy, sha256 } = loadPolicyHashed(policyFile);
  const tier = policy.tierByName.get('read')!;
  expect(serverArtifacts(tier.server!)).toEqual([jar, program].sort()); // sorted; the directory is not a file
  const what = tierSigningSubject(tier, { subject: f.subject });
  expect(what.subject).toBeInstanceOf(ServerSubject);
  const { envelope } = await signTier({ key: f.key, tier, profilesDir: f.profilesDir, policyFile, ...what });
  writeEnvelope(f.attestations, 'read', envelope);
  const gate = f.gate({ policyFile, loadedPolicySha256: sha256 });
  await gate.admit(tier);
  const report = gate.report('read');
  expect(report).toMatchObject({ status: 'verified', subject: { name: 'server:read', kind: 'server' } });
  // The install subject is not what this tier runs: its digest does not matter here.
  expect(report.subject!.digest.sha256).not.toBe((await f.subject.current()).digest.sha256);

  const before = readFileSync(jar);
  writeFileSync(jar, 'the server, version 1 with a backdoor\n');
  const err = await gate.admit(tier).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TrustRefusal);
  expect((err as TrustRefusal).reason).toBe('subject');
  expect((err as TrustRefusal).message).toMatch(/^the server's files \(server:read\) is sha256:[0-9a-f]{12}, the statement signs sha256:[0-9a-f]{12}/);
  writeFileSync(jar, before);
  await expect(gate.admit(tier)).resolves.toBeDefined();
});
