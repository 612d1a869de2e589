// The policy's limits and the connection caps through the real proxy: a client over its rate
// gets 429 with Retry-After and an OperationOutcome while another client is served; the
// global concurrency limit holds with a slow upstream and its slots come back when requests
// end, fail upstream or are abandoned by their client; connections over the per-address cap
// are closed as they arrive; idle keep-alive connections and connections on which nothing
// moves are closed. Every refusal proves the upstream never saw the request.

import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { closeClients, send } from '../helpers/http-client';
import { scrape, value } from '../helpers/metrics-text';
import { poll } from '../helpers/poll';
import { startProxy, stopAllProxies, waitReadyz, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';

let dir: string;
let up: RecordingUpstream;

const policy = (limits: object) => stringify({ tiers: [{ name: 'all', upstreams: [up.url] }], rules: [{ resources: ['*'], interactions: ['read', 'search-type'], tier: 'all' }], limits });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-limits-'));
  up = await startRecordingUpstream({ name: 'up' });
});

afterAll(async () => {
  closeClients();
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** GET from a given local address (127.0.0.x): another client, as the front door sees it. */
function getFrom(localAddress: string, origin: string, target: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: target, localAddress, agent: false, headers: { accept: 'application/fhir+json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a client over its rate', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxy({ dir, policy: policy({ perClient: { rate: 1, burst: 3 } }) });
  }, 60_000);
  afterAll(async () => expect(await proxy.stop()).toEqual({ code: 0, signal: null }));

  test('gets 429 with Retry-After and an OperationOutcome once its burst is spent; the upstream never sees it; another client is served', async () => {
    up.clear();
    const answers: { status: number; headers: http.IncomingHttpHeaders; json: any }[] = [];
    while (answers.length < 20 && answers.every((a) => a.status === 200)) answers.push(await getFrom('127.0.0.1', proxy.origin, '/fhir/Patient/rate'));
    const refused = answers[answers.length - 1];
    expect(refused.status).toBe(429);
    // The burst (3) at least was served before the first refusal.
    expect(answers.length - 1).toBeGreaterThanOrEqual(3);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toMatch(/^application\/fhir\+json/);
    expect(refused.json).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'throttled' }] });
    expect(refused.json.issue[0].diagnostics).toContain('address 127.0.0.1 may send at most 1 requests a second');
    expect(up.traffic().filter((r) => r.path.endsWith('/Patient/rate'))).toHaveLength(answers.length - 1);

    expect((await getFrom('127.0.0.2', proxy.origin, '/fhir/Patient/other')).status).toBe(200);
    const { samples } = await scrape(proxy.adminUrl);
    expect(value(samples, 'fhirguard_refusals_total', { reason: 'rate-limit' })).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'fhirguard_limit', { scope: 'per-client', kind: 'rate' })).toBe(1);
    expect(value(samples, 'fhirguard_limit', { scope: 'per-client', kind: 'burst' })).toBe(3);
  });
});

describe('the global concurrency limit', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxy({ dir, policy: policy({ global: { concurrency: 2 } }) });
  }, 60_000);
  afterAll(async () => {
    up.setBehaviour({ kind: 'normal' });
    expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  });
  const inFlight = async (): Promise<number> => value((await scrape(proxy.adminUrl)).samples, 'fhirguard_requests_in_flight');

  test('refuses a third request while two wait on a slow upstream, and serves again when they end', async () => {
    up.clear();
    up.setBehaviour({ kind: 'slow', ms: 1500 });
    const slow = [send(proxy.origin, 'GET', '/fhir/Patient/c1', { fresh: true }), send(proxy.origin, 'GET', '/fhir/Patient/c2', { fresh: true })];
    await up.waitFor((r) => r.path.endsWith('/c1'));
    await up.waitFor((r) => r.path.endsWith('/c2'));
    const third = await send(proxy.origin, 'GET', '/fhir/Patient/c3', { fresh: true });
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    expect(third.json.issue[0].diagnostics).toContain('at most 2 requests at once');
    expect(up.traffic().some((r) => r.path.endsWith('/c3'))).toBe(false);
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
    up.setBehaviour({ kind: 'normal' });
    await poll('both slots back', async () => (await inFlight()) === 0);
    expect((await send(proxy.origin, 'GET', '/fhir/Patient/c4', { fresh: true })).status).toBe(200);
  });

  test('a slot comes back when the client abandons its request, and when the upstream fails', async () => {
    up.setBehaviour({ kind: 'slow', ms: 3000 });
    const url = new URL(proxy.origin);
    const abandoned = http.request({ host: url.hostname, port: url.port, path: '/fhir/Patient/gone', agent: false });
    abandoned.on('error', () => undefined);
    abandoned.end();
    await up.waitFor((r) => r.path.endsWith('/Patient/gone'));
    expect(await inFlight()).toBe(1);
    abandoned.destroy();
    await poll('the abandoned slot back', async () => (await inFlight()) === 0);

    up.setBehaviour({ kind: 'reset' });
    const failed = await send(proxy.origin, 'GET', '/fhir/Patient/failed', { fresh: true });
    expect(failed.status).toBeGreaterThanOrEqual(502);
    await poll('the failed slot back', async () => (await inFlight()) === 0);
    up.setBehaviour({ kind: 'normal' });
    // The reset marked the member down until its health check passes again.
    await waitReadyz(proxy, 200);
    // Both slots are usable: two slow requests at once are served.
    up.setBehaviour({ kind: 'slow', ms: 300 });
    expect((await Promise.all([send(proxy.origin, 'GET', '/fhir/Patient/s1', { fresh: true }), send(proxy.origin, 'GET', '/fhir/Patient/s2', { fresh: true })])).map((r) => r.status)).toEqual([
      200, 200,
    ]);
    up.setBehaviour({ kind: 'normal' });
  });
});

describe('connections', () => {
  let proxy: ProxyProcess;
  let release: () => void = () => undefined;
  beforeAll(async () => {
    proxy = await startProxy({ dir, policy: policy({}), args: ['--max-connections-per-address', '3', '--keep-alive-timeout', '500', '--idle-timeout', '1000'] });
  }, 60_000);
  afterAll(async () => {
    release();
    up.setBehaviour({ kind: 'normal' });
    expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  });

  const connect = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const url = new URL(proxy.origin);
      const s = net.connect(Number(url.port), url.hostname, () => resolve(s));
      s.on('error', reject);
    });
  const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

  test('a connection over the per-address cap is closed as it arrives; the others are served', async () => {
    const held = [await connect(), await connect(), await connect()];
    const over = await connect().catch(() => undefined);
    if (over) await closed(over);
    const { samples } = await scrape(proxy.adminUrl);
    expect(value(samples, 'fhirguard_connections_refused_total', { limit: 'per-address' })).toBeGreaterThanOrEqual(1);
    for (const s of held) s.destroy();
    await poll('a new connection served', async () => (await send(proxy.origin, 'GET', '/fhir/Patient/after-cap', { fresh: true }).catch(() => ({ status: 0 }))).status === 200);
  });

  test('an idle keep-alive connection is closed', async () => {
    const s = await connect();
    s.write(`GET /fhir/Patient/ka HTTP/1.1\r\nHost: ${proxy.host}\r\nAccept: application/fhir+json\r\n\r\n`);
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    await closed(s);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  test('a connection on which nothing moves is closed (a response the upstream stopped sending)', async () => {
    up.setBehaviour({ kind: 'hold', release: new Promise<void>((r) => (release = r)) });
    const s = await connect();
    s.write(`GET /fhir/Patient?name=held HTTP/1.1\r\nHost: ${proxy.host}\r\nAccept: application/fhir+json\r\n\r\n`);
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    await closed(s);
    // The head and the first part came; then nothing moved, and the connection was closed.
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).not.toMatch(/\]\}\s*$/);
  });
});
