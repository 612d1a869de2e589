// The options `fhirguard proxy` and `fhirguard up` share (a user contract: each has an
// environment equivalent, listed by --help and in the README).

import { availableParallelism } from 'node:os';
import type { OptionSpec } from '../cli/command';

export const PROXY_OPTIONS: Record<string, OptionSpec> = {
  listen: { type: 'string', env: 'FHIRGUARD_LISTEN', default: '127.0.0.1:8080', arg: '<host:port>', help: 'FHIR listener (port 0: any free port)' },
  base: { type: 'string', env: 'FHIRGUARD_BASE', default: '/fhir', arg: '<path>', help: 'FHIR base path' },
  admin: { type: 'string', env: 'FHIRGUARD_ADMIN', default: '127.0.0.1:9464', arg: '<host:port>', help: 'admin listener: /metrics, /healthz, /readyz, POST /reload' },
  'body-limit': { type: 'string', env: 'FHIRGUARD_BODY_LIMIT', default: '16777216', arg: '<bytes>', help: 'largest request body accepted (413 above)' },
  'max-depth': { type: 'string', env: 'FHIRGUARD_MAX_DEPTH', default: '64', arg: '<n>', help: 'deepest JSON nesting accepted in a body (400 above)' },
  'headers-timeout': { type: 'string', env: 'FHIRGUARD_HEADERS_TIMEOUT', default: '10000', arg: '<ms>', help: 'time a client has to send a request line and headers (408 and closed after)' },
  'request-timeout': { type: 'string', env: 'FHIRGUARD_REQUEST_TIMEOUT', default: '60000', arg: '<ms>', help: 'time a client has to send a whole request, body included (408 and closed after)' },
  'keep-alive-timeout': {
    type: 'string',
    env: 'FHIRGUARD_KEEP_ALIVE_TIMEOUT',
    default: '72000',
    arg: '<ms>',
    help: 'an idle keep-alive connection is closed after this (longer than a load balancer in front keeps its own)',
  },
  'idle-timeout': {
    type: 'string',
    env: 'FHIRGUARD_IDLE_TIMEOUT',
    default: '300000',
    arg: '<ms>',
    help: 'a connection on which nothing is read or written for this long is closed (a stalled exchange)',
  },
  'max-connections': { type: 'string', env: 'FHIRGUARD_MAX_CONNECTIONS', default: '10000', arg: '<n>', help: 'open connections per proxy process; more are closed as they arrive' },
  'max-connections-per-address': {
    type: 'string',
    env: 'FHIRGUARD_MAX_CONNECTIONS_PER_ADDRESS',
    default: '1000',
    arg: '<n>',
    help: 'open connections from one client address per proxy process; more are closed as they arrive',
  },
  processes: {
    type: 'string',
    env: 'FHIRGUARD_PROCESSES',
    default: 'auto',
    arg: '<n|auto>',
    help: 'proxy processes sharing the FHIR listener, one core each (auto: the cores available; 1: no supervisor)',
  },
  'tls-cert': { type: 'string', env: 'FHIRGUARD_TLS_CERT', arg: '<file>', help: 'serve HTTPS on the FHIR listener: PEM certificate, its chain after it (docs/tls.md)' },
  'tls-key': { type: 'string', env: 'FHIRGUARD_TLS_KEY', arg: '<file>', help: "the certificate's PEM private key; both files are reloaded when they change" },
  'tls-client-ca': { type: 'string', env: 'FHIRGUARD_TLS_CLIENT_CA', arg: '<file>', help: 'verify client certificates (mTLS) against these PEM CA certificates' },
  'tls-client-cert': {
    type: 'string',
    env: 'FHIRGUARD_TLS_CLIENT_CERT',
    arg: 'none|optional|required',
    help: 'whether clients must present a certificate (default: required with --tls-client-ca, else none)',
  },
  'audit-dir': { type: 'string', env: 'FHIRGUARD_AUDIT_DIR', arg: '<dir>', help: 'keep the audit trail there: one FHIR AuditEvent per request, fsynced JSON lines (docs/audit.md)' },
  'audit-sink': { type: 'string', env: 'FHIRGUARD_AUDIT_SINK', arg: '<fhir base url>', help: 'also deliver the audit trail to this FHIR server, at least once (needs --audit-dir)' },
};

/** `--processes`: a count, or 'auto' for the cores this process may run on. */
export function processCount(value: unknown): number {
  if (value === undefined || value === 'auto') return availableParallelism();
  return positiveInt(value, 'processes');
}

export function positiveInt(value: unknown, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive whole number (got '${String(value)}')`);
  return n;
}

/** `/fhir/` → `/fhir`; `/` → '' (FHIR at the root). */
export function normaliseBase(value: unknown): string {
  const text = String(value ?? '/fhir').trim();
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(text)) throw new Error(`--base '${text}' must be a path of plain segments starting with '/'`);
  return text.replace(/\/+$/, '');
}
