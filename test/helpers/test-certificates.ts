// Certificates for the TLS tests, made with Debian's openssl into a directory the test owns:
// a test CA and certificates it signs (server certificates for 127.0.0.1 and localhost, an
// expired one, one for another host, client certificates), and a second CA nobody trusts.
//
//   const certs = new TestCertificates(dir);
//   const server = certs.issue('server', { cn: 'localhost', san: 'IP:127.0.0.1,DNS:localhost' });
//   // server.cert, server.key: file paths; certs.ca: the CA's certificate file

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const OPENSSL = '/usr/bin/openssl';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface IssuedCertificate {
  cert: string;
  key: string;
  /** The certificate's SHA-256 fingerprint as `sha256:ab:cd:...`. */
  fingerprint: string;
}

export interface IssueOptions {
  cn: string;
  /** subjectAltName value, e.g. `IP:127.0.0.1,DNS:localhost`. */
  san?: string;
  /** Negative: expired that many days ago (its notAfter is before now). Default 2. */
  days?: number;
  /** Client certificate (extendedKeyUsage clientAuth) rather than server. */
  client?: boolean;
  /** Write the CA's certificate after the leaf (a chain). */
  chain?: boolean;
}

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { stdio: 'pipe' });
}

export class TestCertificates {
  /** The CA's certificate (PEM file). */
  readonly ca: string;
  private readonly caKey: string;

  constructor(
    readonly dir: string,
    name = 'ca',
  ) {
    this.ca = path.join(dir, `${name}.crt`);
    this.caKey = path.join(dir, `${name}.key`);
    openssl(['req', '-x509', ...EC, '-keyout', this.caKey, '-out', this.ca, '-days', '3', '-subj', `/CN=fhirguard test ${name}`]);
  }

  /** A certificate this CA signs, with its key, written as `<name>.crt` and `<name>.key`. */
  issue(name: string, o: IssueOptions): IssuedCertificate {
    const f = (ext: string): string => path.join(this.dir, `${name}.${ext}`);
    openssl(['req', ...EC, '-keyout', f('key'), '-out', f('csr'), '-subj', `/CN=${o.cn}/O=fhirguard tests`]);
    const ext = [...(o.san ? [`subjectAltName=${o.san}`] : []), `extendedKeyUsage=${o.client ? 'clientAuth' : 'serverAuth'}`, 'basicConstraints=CA:FALSE'];
    writeFileSync(f('ext'), `${ext.join('\n')}\n`);
    openssl(['x509', '-req', '-in', f('csr'), '-CA', this.ca, '-CAkey', this.caKey, '-CAcreateserial', '-out', f('crt'), '-days', String(o.days ?? 2), '-extfile', f('ext')]);
    if (o.chain) writeFileSync(f('crt'), readFileSync(f('crt'), 'utf8') + readFileSync(this.ca, 'utf8'));
    const out = execFileSync(OPENSSL, ['x509', '-in', f('crt'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    const fingerprint = `sha256:${out.trim().split('=')[1].toLowerCase()}`;
    return { cert: f('crt'), key: f('key'), fingerprint };
  }
}
