// A tier's `tls:` block: how the front door trusts and authenticates to its https:// upstreams.
// The files are read and checked when the policy loads (a missing file or a key of another
// certificate is a policy error at its line), relative paths being the policy file's
// directory's; the tier carries their contents, so a file changed later cannot break a
// running pool.
//
//   upstreams: [https://fhir.hospital.example:8443/fhir]
//   tls:
//     ca: certs/hospital-ca.pem        # trust these CAs for the upstream (default: the system's)
//     cert: certs/fhirguard.pem        # a client certificate the upstream asks for (mTLS)
//     key: certs/fhirguard.key

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Field } from './yaml-check';
import type { SourcePositions } from './yaml-check';

export interface UpstreamTlsFields {
  ca?: string;
  cert?: string;
  key?: string;
}

/** What the tier's connections are made with: PEM texts, and where they were read from. */
export interface UpstreamTls {
  ca?: string;
  cert?: string;
  key?: string;
  /** The absolute paths read (for messages and for copying them where the proxy runs). */
  files: { ca?: string; cert?: string; key?: string };
}

const PEM_FILE = { type: 'string', expect: 'a PEM file path', check: (v: string) => (v.trim() === '' ? 'an empty path' : undefined) } as const;

export const UPSTREAM_TLS_FIELD: Field = {
  spec: {
    type: 'object',
    fields: {
      ca: { spec: PEM_FILE, doc: "PEM CA certificates the tier's https upstreams are verified against (default: the system's)" },
      cert: { spec: PEM_FILE, doc: 'PEM client certificate presented to the upstreams (with key)' },
      key: { spec: PEM_FILE, doc: "the client certificate's PEM private key" },
    },
  },
  doc: "TLS to the tier's https:// upstreams: CA bundle, client certificate and key (paths relative to the policy file)",
};

/** Reads and checks the files; reports problems into `at` under `<tierPath>.tls`. */
export function compileUpstreamTls(f: UpstreamTlsFields, upstreams: readonly string[], policyFile: string, tierPath: string, at: SourcePositions): UpstreamTls | undefined {
  const p = `${tierPath}.tls`;
  const before = at.issues.length;
  if (!upstreams.some((u) => u.startsWith('https:'))) at.report(p, 'tls applies to https:// upstreams, and the tier has none');
  if ((f.cert === undefined) !== (f.key === undefined)) at.report(p, 'a client certificate needs both cert and key');
  const dir = path.dirname(path.resolve(policyFile));
  const files: UpstreamTls['files'] = {};
  const texts: { ca?: string; cert?: string; key?: string } = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const given = f[name];
    if (given === undefined) continue;
    const file = path.resolve(dir, given);
    files[name] = file;
    try {
      texts[name] = readFileSync(file, 'utf8');
    } catch (err) {
      at.report(`${p}.${name}`, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (at.issues.length > before) return undefined;
  try {
    // The same check a connection makes: unreadable PEM, or a key of another certificate, fails here.
    createSecureContext(texts);
  } catch (err) {
    const field = f.cert !== undefined ? 'cert' : 'ca';
    at.report(`${p}.${field}`, `${Object.values(files).join(', ')} do not load: ${(err as Error).message}`);
    return undefined;
  }
  return { ...texts, files };
}
