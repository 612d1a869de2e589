// DSSE envelopes and Ed25519 keys: the pre-authentication encoding byte for byte (the spec's
// own example), sign and verify round trips, and every way an envelope must fail: another
// key, a flipped bit in the signature or the payload, a swapped payloadType, a keyid hint
// that lies, malformed JSON and base64. Keys: ids, PEM files and directories of them, what
// is refused as a trusted key, and keygen's files (never overwritten, private key 0600).

import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnvelope, pae, signEnvelope, verifyEnvelope, EnvelopeError, type DsseEnvelope } from '../../src/trust/dsse';
import { generateSigningKey, keyIdOf, KeyError, loadSigningKey, loadTrustedKeys, writeKeyPair, type SigningKey, type TrustedKey } from '../../src/trust/keys';
import { removeDir, shortTempDir } from '../helpers/confined';

let dir: string;
let a: SigningKey;
let b: SigningKey;
let trustedA: TrustedKey;
let trustedB: TrustedKey;

function pair(name: string): SigningKey {
  const k = writeKeyPair(dir, name);
  return loadSigningKey(k.keyFile);
}

beforeAll(() => {
  dir = shortTempDir('dsse');
  a = pair('a');
  b = pair('b');
  [trustedA] = loadTrustedKeys(path.join(dir, 'a.pub'));
  [trustedB] = loadTrustedKeys(path.join(dir, 'b.pub'));
});

afterAll(() => removeDir(dir));

const TYPE = 'application/vnd.in-toto+json';
const payload = Buffer.from('{"hello":"world"}');

describe('PAE', () => {
  test("is the spec's encoding: DSSEv1 SP LEN(type) SP type SP LEN(body) SP body", () => {
    // The example of the DSSE protocol document.
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  });

  test('counts bytes, not characters, and keeps the body as bytes', () => {
    const body = Buffer.from([0xc3, 0xa9, 0x00, 0xff]);
    expect(pae('tÿpe', body)).toEqual(Buffer.concat([Buffer.from('DSSEv1 5 tÿpe 4 '), body]));
    expect(pae('', Buffer.alloc(0)).toString()).toBe('DSSEv1 0  0 ');
  });
});

describe('sign and verify', () => {
  test('a round trip: the payload back, with the key that verified it', () => {
    const env = signEnvelope(payload, TYPE, a);
    expect(env).toEqual({ payload: payload.toString('base64'), payloadType: TYPE, signatures: [{ keyid: a.keyid, sig: expect.any(String) }] });
    expect(Buffer.from(env.signatures[0].sig, 'base64')).toHaveLength(64);
    const v = verifyEnvelope(parseEnvelope(JSON.stringify(env)), [trustedB, trustedA]);
    expect(v).toMatchObject({ payloadType: TYPE, key: { keyid: a.keyid } });
    expect(v!.payload).toEqual(payload);
  });

  test('the signature covers PAE(type, payload), not the payload alone', () => {
    const env = signEnvelope(payload, TYPE, a);
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    expect(verify(null, pae(TYPE, payload), trustedA.publicKey, sig)).toBe(true);
    expect(verify(null, payload, trustedA.publicKey, sig)).toBe(false);
  });

  test('a key that is not trusted verifies nothing', () => {
    expect(verifyEnvelope(signEnvelope(payload, TYPE, b), [trustedA])).toBeNull();
    expect(verifyEnvelope(signEnvelope(payload, TYPE, a), [])).toBeNull();
  });

  test('a flipped bit in the signature, the payload or a swapped payloadType breaks it', () => {
    const env = signEnvelope(payload, TYPE, a);
    const sig = Buffer.from(env.signatures[0].sig, 'base64');
    sig[10] ^= 1;
    expect(verifyEnvelope({ ...env, signatures: [{ keyid: a.keyid, sig: sig.toString('base64') }] }, [trustedA])).toBeNull();
    const body = Buffer.from(payload);
    body[2] ^= 1;
    expect(verifyEnvelope({ ...env, payload: body.toString('base64') }, [trustedA])).toBeNull();
    expect(verifyEnvelope({ ...env, payloadType: 'application/json' }, [trustedA])).toBeNull();
  });

  test('the keyid is a hint: a lying hint neither breaks a good signature nor makes a bad one trusted', () => {
    const env = signEnvelope(payload, TYPE, a);
    // Hint names trusted key B, but A signed: A is still tried, and is the key reported.
    expect(verifyEnvelope({ ...env, signatures: [{ keyid: b.keyid, sig: env.signatures[0].sig }] }, [trustedB, trustedA])?.key.keyid).toBe(a.keyid);
    // B's signature hinted as A's, with only A trusted: nothing verifies.
    const byB = signEnvelope(payload, TYPE, b);
    expect(verifyEnvelope({ ...byB, signatures: [{ keyid: a.keyid, sig: byB.signatures[0].sig }] }, [trustedA])).toBeNull();
  });

  test('any one of several signatures verifying under a trusted key is enough; junk signatures are skipped', () => {
    const byA = signEnvelope(payload, TYPE, a);
    const byB = signEnvelope(payload, TYPE, b);
    const env: DsseEnvelope = { ...byA, signatures: [{ keyid: '', sig: 'not*base64' }, { keyid: '', sig: 'AAAA' }, byB.signatures[0], byA.signatures[0]] };
    expect(verifyEnvelope(env, [trustedA])?.key.keyid).toBe(a.keyid);
    expect(verifyEnvelope({ ...env, signatures: env.signatures.slice(0, 3) }, [trustedA])).toBeNull();
  });

  test('URL-safe base64 is accepted as DSSE allows', () => {
    const env = signEnvelope(Buffer.from([0xfb, 0xff, 0xfe, 0x3e, 0x3f]), TYPE, a);
    const url = (s: string): string => s.replace(/\+/g, '-').replace(/\//g, '_');
    expect(verifyEnvelope(parseEnvelope(JSON.stringify({ ...env, payload: url(env.payload), signatures: [{ keyid: a.keyid, sig: url(env.signatures[0].sig) }] })), [trustedA])).not.toBeNull();
  });
});

describe('parseEnvelope refuses what is not an envelope', () => {
  const good = (): Record<string, unknown> => ({ payload: 'e30=', payloadType: TYPE, signatures: [{ keyid: '', sig: 'AAAA' }] });
  test.each([
    ['not JSON', '{"payload":', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['null', 'null', /not a JSON object/],
    ['no payload', JSON.stringify({ ...good(), payload: undefined }), /payload missing/],
    ['a payload that is not base64', JSON.stringify({ ...good(), payload: 'e30=!' }), /payload is not base64/],
    ['no payloadType', JSON.stringify({ ...good(), payloadType: 1 }), /payloadType missing/],
    ['no signatures', JSON.stringify({ ...good(), signatures: {} }), /signatures missing/],
    ['a signature without sig', JSON.stringify({ ...good(), signatures: [{ keyid: 'x' }] }), /signatures\[0\]\.sig missing/],
    ['a null signature', JSON.stringify({ ...good(), signatures: [null] }), /signatures\[0\]\.sig missing/],
  ])('%s', (_what, text, message) => {
    expect(() => parseEnvelope(text)).toThrow(EnvelopeError);
    expect(() => parseEnvelope(text)).toThrow(message);
  });
});

describe('keys', () => {
  test('a key id is the sha256 of the SPKI DER public key, the same from the private and the public file', () => {
    const g = generateSigningKey();
    const pub = createPublicKey(g.publicPem);
    expect(g.keyid).toMatch(/^[0-9a-f]{64}$/);
    expect(keyIdOf(pub)).toBe(g.keyid);
    expect(a.keyid).toBe(trustedA.keyid);
    expect(a.keyid).not.toBe(b.keyid);
  });

  test('keygen writes the private key 0600 and the public key 0644, and never overwrites either', () => {
    const sub = path.join(dir, 'new', 'keys');
    const k = writeKeyPair(sub, 'ops');
    expect(statSync(k.keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(k.publicFile).mode & 0o777).toBe(0o644);
    expect(statSync(sub).mode & 0o777).toBe(0o700);
    expect(readFileSync(k.keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const before = [readFileSync(k.keyFile, 'utf8'), readFileSync(k.publicFile, 'utf8')];
    expect(() => writeKeyPair(sub, 'ops')).toThrow(/ops\.key exists; keep it/);
    // Only the public half there: still not overwritten, and no private key made beside it.
    const other = path.join(dir, 'half');
    mkdirSync(other);
    writeFileSync(path.join(other, 'x.pub'), 'keep me');
    expect(() => writeKeyPair(other, 'x')).toThrow(KeyError);
    expect(readFileSync(path.join(other, 'x.pub'), 'utf8')).toBe('keep me');
    expect(() => statSync(path.join(other, 'x.key'))).toThrow();
    expect([readFileSync(k.keyFile, 'utf8'), readFileSync(k.publicFile, 'utf8')]).toEqual(before);
  });

  test('trusted keys: a PEM file (several blocks too) or a directory of *.pem and *.pub files', () => {
    const multi = path.join(dir, 'multi.pem');
    writeFileSync(multi, readFileSync(path.join(dir, 'a.pub'), 'utf8') + '\n' + readFileSync(path.join(dir, 'b.pub'), 'utf8'));
    expect(loadTrustedKeys(multi).map((k) => k.keyid)).toEqual([a.keyid, b.keyid]);
    const d = path.join(dir, 'trusted');
    mkdirSync(d);
    writeFileSync(path.join(d, 'one.pub'), readFileSync(path.join(dir, 'a.pub')));
    writeFileSync(path.join(d, 'two.pem'), readFileSync(path.join(dir, 'a.pub'))); // the same key twice: once
    writeFileSync(path.join(d, 'README'), 'not a key');
    expect(loadTrustedKeys(d).map((k) => k.keyid)).toEqual([a.keyid]);
  });

  test('refused as trusted keys: a private key, another algorithm, junk, an empty directory, nothing', () => {
    expect(() => loadTrustedKeys(path.join(dir, 'a.key'))).toThrow(/holds a PRIVATE KEY; trusted keys are public keys/);
    const rsa = path.join(dir, 'rsa.pem');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => loadTrustedKeys(rsa)).toThrow(/an rsa key; fhirguard signs and verifies with Ed25519 keys only/);
    const junk = path.join(dir, 'junk.pem');
    writeFileSync(junk, '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n');
    expect(() => loadTrustedKeys(junk)).toThrow(/not a public key/);
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    expect(() => loadTrustedKeys(empty)).toThrow(/no \*\.pem or \*\.pub public key files/);
    expect(() => loadTrustedKeys(path.join(dir, 'nowhere'))).toThrow(/no such file or directory/);
  });

  test('a signing key must be an Ed25519 private key', () => {
    const rsa = path.join(dir, 'rsa.key');
    writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(() => loadSigningKey(rsa)).toThrow(/Ed25519 keys only/);
    expect(() => loadSigningKey(path.join(dir, 'a.pub'))).toThrow(/not a private key in PEM/);
  });
});
