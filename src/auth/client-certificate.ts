// Who asks, when the client authenticated with a TLS certificate (mTLS): the verified
// certificate's subject, subject alternative names and SHA-256 fingerprint, read once per
// connection, and the policy's way of naming one (`certificates:` in a rule). Only a
// certificate the listener verified against --tls-client-ca is ever an identity.

import type { PeerCertificate } from 'node:tls';

export interface CertificateIdentity {
  /** The subject's common name, when it has one. */
  commonName?: string;
  /** The subject distinguished name, as `CN=a, O=b`, for logs and the audit trail. */
  subject: string;
  /** Subject alternative names as `dns:<name>`, `uri:<uri>`, `email:<address>`, `ip:<address>`. */
  altNames: readonly string[];
  /** `sha256:` and the DER's SHA-256 in lower-case hex pairs joined by ':'. */
  fingerprint: string;
}

/** How OpenSSL names each SAN kind in `subjectaltname` → the policy's prefix. */
const SAN_KINDS: Readonly<Record<string, string>> = { DNS: 'dns', URI: 'uri', email: 'email', 'IP Address': 'ip' };

function firstOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The identity of a verified peer certificate (tls.TLSSocket#getPeerCertificate()). */
export function certificateIdentity(cert: PeerCertificate): CertificateIdentity {
  const subjectEntries = Object.entries(cert.subject ?? {}).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${String(x)}`));
  const altNames = (cert.subjectaltname ?? '')
    .split(', ')
    .filter(Boolean)
    .flatMap((entry) => {
      const i = entry.indexOf(':');
      const kind = SAN_KINDS[entry.slice(0, i)];
      // Node quotes a name holding a comma or quote as a JSON string.
      const raw = entry.slice(i + 1);
      const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
      return kind ? [`${kind}:${kind === 'dns' || kind === 'email' ? value.toLowerCase() : value}`] : [];
    });
  const commonName = firstOf(cert.subject?.CN);
  return {
    ...(commonName !== undefined ? { commonName } : {}),
    subject: subjectEntries.join(', '),
    altNames,
    fingerprint: `sha256:${cert.fingerprint256.toLowerCase()}`,
  };
}

/**
 * A `certificates:` entry of a rule: `cn:<common name>`, `dns:<name>`, `uri:<uri>`,
 * `email:<address>`, `ip:<address>` (a subject alternative name) or `sha256:<fingerprint>`
 * (hex, with or without ':'; what `openssl x509 -fingerprint -sha256` prints).
 */
export const CERTIFICATE_MATCH_KINDS = ['cn', 'dns', 'uri', 'email', 'ip', 'sha256'] as const;

/** Why `entry` is not a certificate match, or undefined when it is one. */
export function certificateMatchProblem(entry: string): string | undefined {
  const i = entry.indexOf(':');
  const kind = entry.slice(0, i);
  const value = entry.slice(i + 1);
  if (i < 0 || !(CERTIFICATE_MATCH_KINDS as readonly string[]).includes(kind)) {
    return `${JSON.stringify(entry)} names no certificate: expected ${CERTIFICATE_MATCH_KINDS.map((k) => `${k}:...`).join(', ')}`;
  }
  if (value.trim() === '') return `${JSON.stringify(entry)}: nothing after '${kind}:'`;
  if (kind === 'sha256' && !/^[0-9a-f]{64}$/i.test(value.replace(/:/g, ''))) return `${JSON.stringify(entry)} is not a SHA-256 fingerprint (64 hex digits, ':' between pairs allowed)`;
  return undefined;
}

/** Whether a checked `certificates:` entry names this certificate. */
export function certificateMatches(entry: string, cert: CertificateIdentity): boolean {
  const i = entry.indexOf(':');
  const kind = entry.slice(0, i);
  const value = entry.slice(i + 1);
  switch (kind) {
    case 'cn':
      return cert.commonName === value;
    case 'sha256': {
      const hex = value.replace(/:/g, '').toLowerCase();
      return cert.fingerprint.slice('sha256:'.length).replace(/:/g, '') === hex;
    }
    case 'dns':
    case 'email':
      return cert.altNames.includes(`${kind}:${value.toLowerCase()}`);
    default:
      return cert.altNames.includes(entry);
  }
}
