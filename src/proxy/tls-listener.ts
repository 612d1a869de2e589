// HTTPS on the FHIR listener: the certificate and key (--tls-cert, --tls-key), client
// certificates verified against a CA bundle (--tls-client-ca, --tls-client-cert), the protocol
// versions and ciphers, and reloading the certificate without dropping a connection: a new
// pair is checked whole, then handed to server.setSecureContext(), which only handshakes that
// start later use. A pair that does not load (half written, key of another certificate) is
// refused with an error in the log, and the one in use stays.

import { readFileSync, watch, type FSWatcher } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import path from 'node:path';
import { createSecureContext, type SecureContextOptions, type TlsOptions, type TLSSocket } from 'node:tls';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { readClientCertificate } from './client-certificates';

export const CLIENT_CERT_MODES = ['none', 'optional', 'required'] as const;
export type ClientCertMode = (typeof CLIENT_CERT_MODES)[number];

/** The TLS options of the FHIR listener, as given (paths absolute). */
export interface TlsSettings {
  cert: string;
  key: string;
  clientCa?: string;
  clientCert: ClientCertMode;
}

/**
 * TLS 1.2 suites: Mozilla's "intermediate" configuration (forward secret AEAD only), without
 * its DHE suites (they need DH parameters, and every client of this decade has ECDHE). TLS
 * 1.3 suites are all AEAD; they are listed so that this string is the whole choice.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Mozilla intermediate's curves. */
const ECDH_CURVES = 'X25519:prime256v1:secp384r1';

/** A reload's result, for whoever asked (a file change, SIGHUP). */
export interface TlsReload {
  status: 'reloaded' | 'unchanged' | 'refused' | 'off';
  detail: string;
}

/** The TLS settings in the proxy's options, or undefined without --tls-cert; throws on a contradiction. */
export function tlsSettings(values: Record<string, unknown>): TlsSettings | undefined {
  const str = (name: string): string | undefined => (typeof values[name] === 'string' && values[name] !== '' ? path.resolve(values[name]) : undefined);
  const cert = str('tls-cert');
  const key = str('tls-key');
  const clientCa = str('tls-client-ca');
  const mode = values['tls-client-cert'];
  if (mode !== undefined && !(CLIENT_CERT_MODES as readonly unknown[]).includes(mode)) {
    throw new Error(`--tls-client-cert must be one of ${CLIENT_CERT_MODES.join(', ')} (got '${String(mode)}')`);
  }
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined || mode !== undefined) throw new Error('--tls-client-ca and --tls-client-cert need HTTPS: give --tls-cert and --tls-key too');
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new Error('HTTPS needs both --tls-cert and --tls-key');
  // With a CA bundle, certificates are required unless said otherwise: giving the bundle says who may connect.
  const clientCert = (mode as ClientCertMode | undefined) ?? (clientCa !== undefined ? 'required' : 'none');
  if (clientCert !== 'none' && clientCa === undefined) throw new Error(`--tls-client-cert ${clientCert} needs --tls-client-ca, the CAs client certificates are verified against`);
  if (clientCert === 'none' && clientCa !== undefined) throw new Error('--tls-client-ca is given but --tls-client-cert is none: remove one of them');
  return { cert, key, ...(clientCa !== undefined ? { clientCa } : {}), clientCert };
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

interface Material {
  context: SecureContextOptions;
  /** The leaf certificate's fingerprint and expiry, for the log. */
  fingerprint: string;
  validTo: string;
  /** The files' text, to tell a change from a touch. */
  text: string;
}

/** Reads and checks the certificate, key and CA files; throws a message naming the file at fault. */
function loadMaterial(s: TlsSettings): Material {
  const cert = readPem(s.cert, 'certificate (--tls-cert)');
  const key = readPem(s.key, 'key (--tls-key)');
  const ca = s.clientCa !== undefined ? readPem(s.clientCa, 'client CA bundle (--tls-client-ca)') : undefined;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`${s.cert} holds no PEM certificate: ${(err as Error).message}`);
  }
  const context: SecureContextOptions = { cert, key, ...(ca !== undefined ? { ca } : {}), minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true, ecdhCurve: ECDH_CURVES };
  try {
    // The whole context is built once here: a key of another certificate, or a bad CA file, fails now.
    createSecureContext(context);
  } catch (err) {
    throw new Error(`the certificate ${s.cert} and key ${s.key}${ca !== undefined ? ` (client CAs ${s.clientCa})` : ''} do not load together: ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKeyOf(key, s.key))) throw new Error(`the key ${s.key} is not the key of the certificate ${s.cert}`);
  return { context, fingerprint: leaf.fingerprint256, validTo: leaf.validTo, text: `${cert}\0${key}\0${ca ?? ''}` };
}

function privateKeyOf(pem: string, file: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${file} holds no PEM private key: ${(err as Error).message}`);
  }
}

/** How long file changes settle before a reload (a certificate and its key are rarely written at once). */
const RELOAD_SETTLE_MS = 250;

export class TlsListener {
  private material: Material;
  private server: HttpsServer | undefined;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly closing: (() => void)[] = [];

  /** Loads the files; throws when they do not make a working pair. */
  constructor(
    readonly settings: TlsSettings,
    private readonly log: Logger,
  ) {
    this.material = loadMaterial(settings);
  }

  /** What https.createServer takes: the pair, the CAs, and how client certificates are asked for. */
  serverOptions(): TlsOptions {
    const { clientCert } = this.settings;
    return {
      ...this.material.context,
      requestCert: clientCert !== 'none',
      // optional: a client without a certificate gets in (as nobody); one whose certificate
      // fails verification is turned away after the handshake (attach()).
      rejectUnauthorized: clientCert === 'required',
    };
  }

  /** Takes over the listener once it exists: client certificates read per connection, files watched. */
  attach(server: HttpsServer): void {
    this.server = server;
    if (this.settings.clientCert !== 'none') {
      server.prependListener('secureConnection', (socket: TLSSocket) => {
        if (readClientCertificate(socket)) return;
        this.log.info({ remote: socket.remoteAddress, error: socket.authorizationError }, 'a client certificate that does not verify against --tls-client-ca: connection closed');
        socket.destroy();
      });
    }
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      this.log.debug({ remote: socket.remoteAddress, code: err.code }, `TLS handshake failed: ${err.message}`);
    });
    this.log.info({ fingerprint: this.material.fingerprint, validTo: this.material.validTo, clientCert: this.settings.clientCert }, 'TLS certificate in use');
    this.watch();
  }

  /** Watches the directories of the files (a Kubernetes secret or certbot swaps links there, not the files). */
  private watch(): void {
    const { cert, key, clientCa } = this.settings;
    const dirs = new Set([cert, key, ...(clientCa !== undefined ? [clientCa] : [])].map((f) => path.dirname(f)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.changed());
        w.on('error', (err) => this.log.warn({ err, dir }, 'watching the TLS files stopped: reload them with a signal'));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ err, dir }, 'cannot watch the TLS files: a changed certificate is taken only when reloaded explicitly');
      }
    }
  }

  private changed(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload();
    }, RELOAD_SETTLE_MS);
    this.timer.unref();
  }

  /** Reads the files again and, when they changed and load, serves new handshakes with them. */
  reload(): Promise<TlsReload> {
    let next: Material;
    try {
      next = loadMaterial(this.settings);
    } catch (err) {
      const detail = `${(err as Error).message}; still serving the certificate ${this.material.fingerprint}`;
      this.log.error(`TLS reload refused: ${detail}`);
      return Promise.resolve({ status: 'refused', detail });
    }
    if (next.text === this.material.text) return Promise.resolve({ status: 'unchanged', detail: `the files are those in use (${this.material.fingerprint})` });
    // Connections already open keep their session; only handshakes from now on use the new pair.
    this.server?.setSecureContext(next.context);
    this.material = next;
    this.log.info({ fingerprint: next.fingerprint, validTo: next.validTo }, 'TLS certificate reloaded');
    return Promise.resolve({ status: 'reloaded', detail: `now serving ${next.fingerprint}, valid to ${next.validTo}` });
  }

  /** Something to end with the listener (the connections the plain-HTTP check still holds). */
  onClose(fn: () => void): void {
    this.closing.push(fn);
  }

  close(): void {
    for (const fn of this.closing.splice(0)) fn();
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
