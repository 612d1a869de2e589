// The client certificate of each TLS connection (mTLS), read once when its handshake completes,
// and the subject the policy decides a request on: the bearer token's identity, the
// certificate's, or both. Subjects are kept per certificate (and token identity), so the
// policy's per-subject decision tables are still found with a WeakMap lookup.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { certificateIdentity, type CertificateIdentity } from '../auth/client-certificate';
import type { Identity } from '../auth/identity';
import type { RuleSubject } from '../policy/identity-rules';

const byConnection = new WeakMap<object, CertificateIdentity>();

/**
 * Reads the verified client certificate of a connection whose handshake just completed.
 * Returns false when the client presented a certificate the listener could not verify
 * (possible only when certificates are optional): such a client is not let in as anyone.
 */
export function readClientCertificate(socket: TLSSocket): boolean {
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  if (!presented) return true;
  if (!socket.authorized) return false;
  byConnection.set(socket, certificateIdentity(cert));
  return true;
}

/** The verified client certificate of the connection a request came on, if any. */
export function connectionCertificate(socket: Socket): CertificateIdentity | undefined {
  return byConnection.get(socket);
}

const certificateOnly = new WeakMap<CertificateIdentity, RuleSubject>();
const tokenAndCertificate = new WeakMap<CertificateIdentity, WeakMap<Identity, RuleSubject>>();

/** Who the policy decides for: the token's identity and the connection's certificate, as either is known. */
export function ruleSubject(identity: Identity | undefined, certificate: CertificateIdentity | undefined): RuleSubject | undefined {
  if (certificate === undefined) return identity;
  if (identity === undefined) {
    let s = certificateOnly.get(certificate);
    if (s === undefined) certificateOnly.set(certificate, (s = { scopes: [], certificate }));
    return s;
  }
  let perToken = tokenAndCertificate.get(certificate);
  if (perToken === undefined) tokenAndCertificate.set(certificate, (perToken = new WeakMap()));
  let s = perToken.get(identity);
  if (s === undefined) perToken.set(identity, (s = { ...identity, certificate }));
  return s;
}
