// HTTPS on the FHIR listener, through the real proxy process with a recording upstream and
// certificates made by openssl for the test: the protocol versions it speaks, certificates a
// verifying client refuses, plain HTTP to the HTTPS port, client certificates (mTLS) refused
// without a trusted one and matched by the policy and recorded in the audit trail. Every
// refusal proves the upstream never saw the request.

import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SecureVersion } from 'node:tls';
import { requestIdOf, trailEvents } from '../audit/trail-helpers';
import { scrapeUntil, value } from '../helpers/metrics-text';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { TestCertificates, type IssuedCertificate } from '../helpers/test-certificates';

export interface TlsAnswer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  protocol: string | null;
  /** The server certificate's fingerprint as `sha256:...`. */
  served: string;
}

export interface TlsGetOptions {
  ca: string | string[];
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
  client?: IssuedCertificate;
  servername?: string;
  agent?: https.Agent | false;
}

/** One HTTPS GET with a verifying client; rejects on a handshake or verification failure. */
export function tlsGet(url: string, o: TlsGetOptions): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca: o.ca,
        agent: o.agent ?? false,
        ...(o.minVersion ? { minVersion: o.minVersion } : {}),
        ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
        ...(o.ciphers ? { ciphers: o.ciphers } : {}),
        ...(o.servername ? { servername: o.servername } : {}),
        ...(o.client ? { cert: readPem(o.client.cert), key: readPem(o.client.key) } : {}),
      },
      (res) => {
        // Read now: a keep-alive socket goes back to its agent (res.socket null) once the body ends.
        const socket = res.socket as import('node:tls').TLSSocket;
        const protocol = socket.getProtocol();
        const served = `sha256:${socket.getPeerCertificate().fingerprint256.toLowerCase()}`;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, protocol, served }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

function readPem(file: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:fs') as typeof import('node:fs')).readFileSync(file, 'utf8');
}

let dir: string;
let certs: TestCertificates;
let server: IssuedCertificate;
let up: RecordingUpstream;
let proxy: ProxyProcess;
const ca = (): string => readPem(certs.ca);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-tls-'));
  certs = new TestCertificates(dir);
  server = certs.issue('server', { cn: 'localhost', san: 'IP:127.0.0.1,DNS:localhost', chain: true });
  up = await startRecordingUpstream({ name: 'up' });
  proxy = await startProxy({
    dir,
    args: ['--tls-cert', server.cert, '--tls-key', server.key],
    policy: {
      tiers: [{ name: 'all', upstreams: [up.url] }],
      rules: [{ resources: ['*'], interactions: ['read', 'search-type', 'capabilities'], tier: 'all' }],
    },
  });
}, 120_000);

afterAll(async () => {
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the HTTPS listener', () => {
  test('logs and serves an https:// FHIR base', () => {
    expect(proxy.fhirUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/fhir$/);
  });

  test.each([['TLSv1.2'], ['TLSv1.3']] as const)('%s handshakes and the request reaches the upstream', async (version) => {
    up.clear();
    const res = await tlsGet(`${proxy.fhirUrl}/Patient/p1`, { ca: ca(), minVersion: version, maxVersion: version });
    expect(res.status).toBe(200);
    expect(res.protocol).toBe(version);
    expect(res.served).toBe(server.fingerprint);
    expect(up.traffic().map((r) => r.path)).toEqual(['/Patient/p1']);
    // The upstream is told the client came over HTTPS.
    expect(up.traffic()[0].headers['x-forwarded-proto']).toBe('https');
  });

  test('TLS 1.1 is refused at the handshake; nothing reaches the upstream', async () => {
    up.clear();
    await expect(tlsGet(`${proxy.fhirUrl}/Patient/p1`, { ca: ca(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).rejects.toThrow(
      /protocol version|unsupported protocol|alert/i,
    );
    expect(up.traffic()).toHaveLength(0);
  });

  test('a TLS 1.2 cipher outside the intermediate list is refused', async () => {
    await expect(tlsGet(`${proxy.fhirUrl}/Patient/p1`, { ca: ca(), maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA256' })).rejects.toThrow(/handshake failure|alert/i);
    expect(up.traffic()).toHaveLength(0);
  });

  test('plain HTTP to the HTTPS port gets a 400 OperationOutcome, counted, and never reaches the upstream', async () => {
    up.clear();
    const port = Number(new URL(proxy.origin).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(`GET /fhir/Patient/p1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: application\/fhir\+json/i);
    expect(head).toMatch(/connection: close/i);
    const outcome = JSON.parse(body) as { resourceType: string; issue: { code: string; diagnostics: string }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toMatch(/speaks HTTPS/);
    const { samples } = await scrapeUntil(proxy.adminUrl, (s) => value(s, 'fhirguard_refusals_total', { reason: 'plain-http' }) >= 1);
    expect(value(samples, 'fhirguard_refusals_total', { reason: 'plain-http' })).toBe(1);
    expect(up.traffic()).toHaveLength(0);
  });

  test('fetch over plain http:// gets the same 400', async () => {
    const res = await fetch(`${proxy.fhirUrl.replace('https:', 'http:')}/metadata`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect(up.traffic()).toHaveLength(0);
  });
});

describe('certificates a verifying client refuses', () => {
  test.each([
    ['expired', { cn: 'localhost', san: 'IP:127.0.0.1,DNS:localhost', days: -1 }, /expired/i],
    ['wrong-host', { cn: 'fhir.elsewhere.example', san: 'DNS:fhir.elsewhere.example' }, /altnames|does not match|Hostname/i],
  ] as const)(
    '%s',
    async (name, issue, error) => {
      const bad = certs.issue(name, issue);
      const p = await startProxy({
        dir,
        args: ['--tls-cert', bad.cert, '--tls-key', bad.key],
        policy: { tiers: [{ name: 'all', upstreams: [up.url] }], rules: [{ resources: ['*'], interactions: ['read'], tier: 'all' }] },
      });
      try {
        up.clear();
        await expect(tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca() })).rejects.toThrow(error);
        expect(up.traffic()).toHaveLength(0);
      } finally {
        expect(await p.stop()).toEqual({ code: 0, signal: null });
      }
    },
    60_000,
  );
});

describe('client certificates (mTLS)', () => {
  let mtls: ProxyProcess;
  let gateway: IssuedCertificate;
  let other: IssuedCertificate;
  let stranger: IssuedCertificate;
  const trail = (): string => path.join(dir, 'mtls-trail');

  beforeAll(async () => {
    gateway = certs.issue('gateway', { cn: 'lab-gateway', san: 'DNS:lab.hospital.example', client: true });
    other = certs.issue('other-client', { cn: 'other-client', client: true });
    stranger = new TestCertificates(dir, 'untrusted-ca').issue('stranger', { cn: 'lab-gateway', client: true });
    mtls = await startProxy({
      dir,
      args: ['--tls-cert', server.cert, '--tls-key', server.key, '--tls-client-ca', certs.ca, '--audit-dir', trail()],
      policy: {
        tiers: [{ name: 'all', upstreams: [up.url] }],
        rules: [
          { resources: ['Observation'], interactions: ['read'], tier: 'all', certificates: ['cn:lab-gateway'] },
          { resources: ['Patient'], interactions: ['read'], tier: 'all', certificates: [`sha256:${gateway.fingerprint.slice(7).toUpperCase()}`, 'dns:nobody.example'] },
          { resources: ['*'], interactions: ['capabilities'], tier: 'all' },
        ],
      },
    });
  }, 60_000);

  afterAll(async () => {
    if (mtls) expect(await mtls.stop()).toEqual({ code: 0, signal: null });
  });

  test('without a certificate, or with one of an unknown CA, the connection is refused', async () => {
    up.clear();
    await expect(tlsGet(`${mtls.fhirUrl}/Observation/o1`, { ca: ca() })).rejects.toThrow(/certificate|alert|socket hang up|ECONNRESET/i);
    await expect(tlsGet(`${mtls.fhirUrl}/Observation/o1`, { ca: ca(), client: stranger })).rejects.toThrow(/certificate|alert|socket hang up|ECONNRESET/i);
    expect(up.traffic()).toHaveLength(0);
  });

  test("the certificate's identity reaches the policy: its rules let it in, another certificate is refused", async () => {
    up.clear();
    expect((await tlsGet(`${mtls.fhirUrl}/Observation/o1`, { ca: ca(), client: gateway })).status).toBe(200);
    expect((await tlsGet(`${mtls.fhirUrl}/Patient/p1`, { ca: ca(), client: gateway })).status).toBe(200);
    expect(up.traffic().map((r) => r.path)).toEqual(['/Observation/o1', '/Patient/p1']);
    up.clear();
    const refused = await tlsGet(`${mtls.fhirUrl}/Observation/o1`, { ca: ca(), client: other });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).resourceType).toBe('OperationOutcome');
    expect(up.traffic()).toHaveLength(0);
  });

  test('the audit event names the client certificate', async () => {
    const ok = await tlsGet(`${mtls.fhirUrl}/Observation/o2`, { ca: ca(), client: gateway });
    const refused = await tlsGet(`${mtls.fhirUrl}/Observation/o3`, { ca: ca(), client: other });
    const id = (r: TlsAnswer): string => String(r.headers['x-request-id']);
    const clientOf = (requestId: string) => {
      const events = trailEvents(trail()).filter((e) => requestIdOf(e) === requestId);
      return events[0]?.agent.find((a) => a.type?.coding?.[0]?.code === '110153')?.who;
    };
    let who: ReturnType<typeof clientOf>;
    // The trail is written as requests end: wait for the second event.
    for (let i = 0; i < 100 && !(who = clientOf(id(refused))); i++) await new Promise((r) => setTimeout(r, 50));
    expect(clientOf(id(ok))).toEqual({ identifier: { type: { text: 'client certificate' }, value: gateway.fingerprint }, display: 'CN=lab-gateway, O=fhirguard tests' });
    expect(who).toEqual({ identifier: { type: { text: 'client certificate' }, value: other.fingerprint }, display: 'CN=other-client, O=fhirguard tests' });
  });
});

describe('certificate reload', () => {
  /** Writes `text` to `file` as a certificate manager does: a new file renamed over the old. */
  const replace = (file: string, from: string): void => {
    const fs = require('node:fs') as typeof import('node:fs'); // eslint-disable-line @typescript-eslint/no-require-imports
    fs.copyFileSync(from, `${file}.new`);
    fs.renameSync(`${file}.new`, file);
  };

  test('the files replaced under load: no request fails, new connections get the new certificate, a mismatched pair is refused', async () => {
    const fs = require('node:fs') as typeof import('node:fs'); // eslint-disable-line @typescript-eslint/no-require-imports
    const live = path.join(dir, 'live');
    fs.mkdirSync(live);
    const first = certs.issue('first', { cn: 'localhost', san: 'IP:127.0.0.1' });
    const second = certs.issue('second', { cn: 'localhost', san: 'IP:127.0.0.1' });
    const third = certs.issue('third', { cn: 'localhost', san: 'IP:127.0.0.1' });
    const cert = path.join(live, 'tls.crt');
    const key = path.join(live, 'tls.key');
    fs.copyFileSync(first.cert, cert);
    fs.copyFileSync(first.key, key);
    const p = await startProxy({
      dir,
      args: ['--tls-cert', cert, '--tls-key', key],
      policy: { tiers: [{ name: 'all', upstreams: [up.url] }], rules: [{ resources: ['*'], interactions: ['read'], tier: 'all' }] },
    });
    const logged = (msg: string): number => p.logs().filter((l) => l.msg.startsWith(msg)).length;
    const waitLogged = async (msg: string, count: number): Promise<void> => {
      for (let i = 0; i < 400 && logged(msg) < count; i++) await new Promise((r) => setTimeout(r, 25));
      expect(logged(msg)).toBe(count);
    };
    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 2, ca: ca() });
    let running = true;
    const failures: unknown[] = [];
    let done = 0;
    const seen = new Set<string>();
    const loop = async (agent: https.Agent | false): Promise<void> => {
      while (running) {
        try {
          const r = await tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca(), agent });
          if (r.status !== 200) failures.push(r.status);
          seen.add(r.served);
          done++;
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const clients = [loop(keepAlive), loop(keepAlive), loop(false), loop(false)];
    try {
      const progress = async (n: number): Promise<void> => {
        const target = done + n;
        while (done < target && failures.length === 0) await new Promise((r) => setTimeout(r, 10));
      };
      await progress(50);
      expect((await tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca() })).served).toBe(first.fingerprint);

      replace(cert, second.cert);
      replace(key, second.key);
      await waitLogged('TLS certificate reloaded', 1);
      await progress(50);
      expect((await tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca() })).served).toBe(second.fingerprint);

      // A certificate whose key has not arrived: refused, the pair in use stays.
      replace(cert, third.cert);
      await waitLogged('TLS reload refused', 1);
      await progress(50);
      expect((await tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca() })).served).toBe(second.fingerprint);
      replace(key, third.key);
      await waitLogged('TLS certificate reloaded', 2);
      await progress(50);
      expect((await tlsGet(`${p.fhirUrl}/Patient/p1`, { ca: ca() })).served).toBe(third.fingerprint);
    } finally {
      running = false;
      await Promise.all(clients);
      keepAlive.destroy();
      expect(await p.stop()).toEqual({ code: 0, signal: null });
    }
    expect(failures).toEqual([]);
    expect(seen).toEqual(new Set([first.fingerprint, second.fingerprint, third.fingerprint]));
  }, 120_000);
});

describe('https upstreams', () => {
  test("a tier's CA bundle and client certificate reach an upstream that requires them; a wrong CA never passes the health check", async () => {
    const upstreamCerts = new TestCertificates(dir, 'upstream-ca');
    const upstreamServer = upstreamCerts.issue('upstream-server', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
    // The upstream trusts client certificates of the first CA only.
    const frontDoor = certs.issue('front-door', { cn: 'fhirguard', client: true });
    const secure = await startRecordingUpstream({
      name: 'secure',
      tls: { cert: readPem(upstreamServer.cert), key: readPem(upstreamServer.key), ca: ca(), requestCert: true, rejectUnauthorized: true },
    });
    const policyDir = path.join(dir, 'policy-dir');
    const fs = require('node:fs') as typeof import('node:fs'); // eslint-disable-line @typescript-eslint/no-require-imports
    fs.mkdirSync(path.join(policyDir, 'certs'), { recursive: true });
    fs.copyFileSync(upstreamCerts.ca, path.join(policyDir, 'certs', 'upstream-ca.pem'));
    fs.copyFileSync(frontDoor.cert, path.join(policyDir, 'certs', 'client.pem'));
    fs.copyFileSync(frontDoor.key, path.join(policyDir, 'certs', 'client.key'));
    const tier = (name: string, caFile: string) => ({ name, upstreams: [secure.url], timeoutMs: 5000, tls: { ca: caFile, cert: 'certs/client.pem', key: 'certs/client.key' } });
    const p = await startProxy({
      dir: policyDir,
      policy: {
        // `wrong` trusts the listener's CA, not the upstream's.
        tiers: [tier('right', 'certs/upstream-ca.pem'), tier('wrong', certs.ca)],
        rules: [
          { resources: ['Patient'], interactions: ['read'], tier: 'right' },
          { resources: ['Observation'], interactions: ['read'], tier: 'wrong' },
        ],
      },
    });
    try {
      const ok = await fetch(`${p.fhirUrl}/Patient/p1`);
      expect(ok.status).toBe(200);
      // The front door also reads the tier's CapabilityStatement (/metadata).
      const served = () => secure.traffic().filter((r) => r.path !== '/metadata');
      expect(served().map((r) => r.path)).toEqual(['/Patient/p1']);
      secure.clear();
      const refused = await fetch(`${p.fhirUrl}/Observation/o1`);
      // The member's health check fails the same way, so the tier has no member to try: 503.
      expect(refused.status).toBe(503);
      const outcome = (await refused.json()) as { resourceType: string; issue: { diagnostics: string }[] };
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].diagnostics).toMatch(/wrong/);
      expect(served()).toHaveLength(0);
      // Why, on /readyz: the upstream's certificate did not verify.
      const ready = (await (await fetch(`${p.adminUrl}/readyz`)).json()) as { tiers: { tier: string; down: { error: string }[] }[] };
      expect(ready.tiers.find((t) => t.tier === 'wrong')?.down[0].error).toMatch(/certificate|verify/i);
      expect(ready.tiers.find((t) => t.tier === 'right')?.down).toEqual([]);
    } finally {
      expect(await p.stop()).toEqual({ code: 0, signal: null });
      await secure.close();
    }
  }, 60_000);

  test('policy errors name the line: an unreadable file, a key of another certificate, tls without https upstreams', async () => {
    const { compilePolicy } = await import('../../src/policy');
    const other = certs.issue('mismatch', { cn: 'x', client: true });
    const text = (tls: string, upstream = 'https://127.0.0.1:1') =>
      `tiers:\n  - name: t\n    upstreams: [${upstream}]\n    tls: ${tls}\nrules:\n  - resources: [Patient]\n    interactions: [read]\n    tier: t\n`;
    const file = path.join(dir, 'p.yaml');
    expect(() => compilePolicy(text('{ ca: nowhere.pem }'), file)).toThrow(/p\.yaml:4:\d+: tiers\[0\]\.tls\.ca: cannot read .*nowhere\.pem: ENOENT/);
    expect(() => compilePolicy(text(`{ cert: ${server.cert}, key: ${other.key} }`), file)).toThrow(/tiers\[0\]\.tls\.cert: .* do not load/);
    expect(() => compilePolicy(text(`{ ca: ${certs.ca} }`, 'http://127.0.0.1:1'), file)).toThrow(/tiers\[0\]\.tls: tls applies to https:\/\/ upstreams/);
    expect(() => compilePolicy(text(`{ cert: ${server.cert} }`), file)).toThrow(/both cert and key/);
  });
});

describe('fhirguard up', () => {
  test('as root it refuses TLS options and tier tls: blocks plainly; otherwise it passes them on with absolute paths', async () => {
    const { tlsUnderUp } = await import('../../src/cli/up-tls');
    const file = path.join(dir, 'up-policy.yaml');
    require('node:fs').writeFileSync(file, 'tiers:\n  - name: t\n    upstreams: [http://127.0.0.1:1]\nrules:\n  - resources: [Patient]\n    interactions: [read]\n    tier: t\n'); // eslint-disable-line @typescript-eslint/no-require-imports
    expect(tlsUnderUp({ 'tls-cert': 'a.pem', 'tls-key': 'a.key' }, true, file)).toEqual({
      refused: expect.stringMatching(/--tls-cert, --tls-key: the confined front door cannot read certificate files/),
    });
    expect(tlsUnderUp({}, true, file)).toEqual({ args: [] });
    expect(tlsUnderUp({ 'tls-cert': 'a.pem', 'tls-key': 'a.key', 'tls-client-cert': 'none' }, false, file)).toEqual({
      args: ['--tls-cert', path.resolve('a.pem'), '--tls-key', path.resolve('a.key'), '--tls-client-cert', 'none'],
    });
  });
});
