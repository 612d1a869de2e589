// DSSE (Dead Simple Signing Envelope, v1): the signature covers PAE(payloadType, payload),
// so neither the payload nor its type can be swapped without breaking it. The JSON
// envelope is {payload: base64, payloadType, signatures: [{keyid, sig: base64}]}.
// keyid is an unauthenticated hint: verification tries the trusted key it names first, then
// every other trusted key, and trusts a signature only for the key that verifies it.

import { sign as edSign, verify as edVerify } from 'node:crypto';
import type { SigningKey, TrustedKey } from './keys';

export interface DsseSignature {
  keyid: string;
  sig: string;
}

export interface DsseEnvelope {
  payload: string;
  payloadType: string;
  signatures: DsseSignature[];
}

/** PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths as ASCII decimal byte counts. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

export function signEnvelope(payload: Buffer, payloadType: string, key: SigningKey): DsseEnvelope {
  const sig = edSign(null, pae(payloadType, payload), key.privateKey);
  return { payload: payload.toString('base64'), payloadType, signatures: [{ keyid: key.keyid, sig: sig.toString('base64') }] };
}

export class EnvelopeError extends Error {}

/** Standard or URL-safe base64, strictly (Buffer.from would skip junk silently). */
function base64(text: unknown, what: string): Buffer {
  if (typeof text !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new EnvelopeError(`${what} is not base64`);
  }
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Checks the envelope's shape (unknown fields are ignored, as DSSE says). */
export function parseEnvelope(text: string): DsseEnvelope {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new EnvelopeError(`not JSON: ${(err as Error).message}`);
  }
  const o = json as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new EnvelopeError('not a JSON object');
  if (typeof o.payload !== 'string') throw new EnvelopeError('payload missing');
  if (typeof o.payloadType !== 'string') throw new EnvelopeError('payloadType missing');
  if (!Array.isArray(o.signatures)) throw new EnvelopeError('signatures missing');
  const signatures = o.signatures.map((s: unknown, i: number) => {
    const sig = (s ?? {}) as Record<string, unknown>;
    if (typeof sig.sig !== 'string') throw new EnvelopeError(`signatures[${i}].sig missing`);
    return { keyid: typeof sig.keyid === 'string' ? sig.keyid : '', sig: sig.sig };
  });
  base64(o.payload, 'payload');
  return { payload: o.payload, payloadType: o.payloadType, signatures };
}

export interface VerifiedEnvelope {
  payload: Buffer;
  payloadType: string;
  /** The trusted key whose signature verified. */
  key: TrustedKey;
}

/** The payload, when one signature verifies under a trusted key; null otherwise. */
export function verifyEnvelope(env: DsseEnvelope, trusted: readonly TrustedKey[]): VerifiedEnvelope | null {
  const payload = base64(env.payload, 'payload');
  const message = pae(env.payloadType, payload);
  for (const s of env.signatures) {
    let sig: Buffer;
    try {
      sig = base64(s.sig, 'signature');
    } catch {
      continue;
    }
    if (sig.length !== 64) continue;
    // The hint orders the keys tried; it never decides which key is trusted.
    const ordered = [...trusted.filter((k) => k.keyid === s.keyid), ...trusted.filter((k) => k.keyid !== s.keyid)];
    for (const key of ordered) {
      if (edVerify(null, message, key.publicKey, sig)) return { payload, payloadType: env.payloadType, key };
    }
  }
  return null;
}
