// Signing keys: Ed25519 from node:crypto, kept as PEM files (PKCS#8 private keys, SPKI
// public keys). A key's id is the sha256 of its SPKI DER encoding, in hex: it names the key
// in DSSE signatures (a hint for choosing the key, never a reason to trust it) and in logs.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SigningKey {
  keyid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface TrustedKey {
  keyid: string;
  publicKey: KeyObject;
  /** The file it was read from. */
  file: string;
}

export class KeyError extends Error {}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function generateSigningKey(): { privatePem: string; publicPem: string; keyid: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyid: keyIdOf(publicKey),
  };
}

function requireEd25519(key: KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ed25519') throw new KeyError(`${file}: an ${key.asymmetricKeyType ?? 'unknown'} key; fhirguard signs and verifies with Ed25519 keys only`);
}

export function loadSigningKey(file: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file));
  } catch (err) {
    throw new KeyError(`${file}: not a private key in PEM: ${(err as Error).message}`);
  }
  requireEd25519(privateKey, file);
  const publicKey = createPublicKey(privateKey);
  return { keyid: keyIdOf(publicKey), privateKey, publicKey };
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/** The public keys of one PEM file (several blocks allowed; private keys are refused). */
function keysOfFile(file: string): TrustedKey[] {
  const text = readFileSync(file, 'utf8');
  const keys: TrustedKey[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== 'PUBLIC KEY') throw new KeyError(`${file}: holds a ${m[1]}; trusted keys are public keys (BEGIN PUBLIC KEY) only`);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey(m[0]);
    } catch (err) {
      throw new KeyError(`${file}: not a public key: ${(err as Error).message}`);
    }
    requireEd25519(publicKey, file);
    keys.push({ keyid: keyIdOf(publicKey), publicKey, file });
  }
  if (!keys.length) throw new KeyError(`${file}: no PEM public key in it`);
  return keys;
}

/**
 * The keys statements may be signed with: a PEM file, or a directory whose *.pem and *.pub
 * files each hold public keys. Throws when there is none: trusting nothing would refuse
 * every start, which is better said at once.
 */
export function loadTrustedKeys(where: string): TrustedKey[] {
  if (!existsSync(where)) throw new KeyError(`${where}: no such file or directory (trusted keys)`);
  const files = statSync(where).isDirectory()
    ? readdirSync(where)
        .filter((n) => n.endsWith('.pem') || n.endsWith('.pub'))
        .sort()
        .map((n) => path.join(where, n))
    : [where];
  const keys = files.flatMap(keysOfFile);
  if (!keys.length) throw new KeyError(`${where}: no *.pem or *.pub public key files`);
  const unique = new Map(keys.map((k) => [k.keyid, k]));
  return [...unique.values()];
}

/**
 * Writes a new key pair as <dir>/<name>.key (0600) and <dir>/<name>.pub; never overwrites
 * (an existing key stays the key statements were signed with).
 */
export function writeKeyPair(dir: string, name: string): { keyFile: string; publicFile: string; keyid: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 }); // a directory made here is the signer's alone
  const keyFile = path.join(dir, `${name}.key`);
  const publicFile = path.join(dir, `${name}.pub`);
  for (const f of [keyFile, publicFile]) if (existsSync(f)) throw new KeyError(`${f} exists; keep it, or remove it to make a new key`);
  const k = generateSigningKey();
  // 'wx': a file that appeared meanwhile is never overwritten; 0600 before a byte is written.
  writeFileSync(keyFile, k.privatePem, { mode: 0o600, flag: 'wx' });
  try {
    writeFileSync(publicFile, k.publicPem, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    rmSync(keyFile, { force: true }); // no half pair left behind
    throw err;
  }
  return { keyFile, publicFile, keyid: k.keyid };
}
