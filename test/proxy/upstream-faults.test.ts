// Every class of upstream failure, more times than a member has connections, through the
// front door's own request path (src/proxy/forward.ts, one path for reads and writes) in
// front of a real upstream that fails on request:
// every failed request ends (an OperationOutcome, or a cut connection once a response was
// under way), and then, once health says the tier can serve, it does serve reads and writes,
// as many at once as the member has connections. A tier whose upstream accepts requests and
// never answers them gives 504, for requests that were sent and for those still waiting for
// a connection. The proxy runs in this process so that its members can have two connections.

import http from 'node:http';
import type net from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loadSearchParameters } from '../../src/fhir/search-parameters';
import { ProxyMetrics } from '../../src/metrics/registry';
import { compilePolicy } from '../../src/policy';
import { UpstreamPools } from '../../src/proxy/pool';
import { buildProxy } from '../../src/proxy/server';

const CONNECTIONS = 2;
const TIMEOUT_MS = 400;
const patient = JSON.stringify({ resourceType: 'Patient', active: true });

let upstream: http.Server;
let pools: UpstreamPools;
let app: FastifyInstance;
let origin: string;
/** Requests the upstream received (health checks left out), by fault. */
const received = new Map<string, number>();

/**
 * The upstream fails as the request's X-Fault header says (the front door forwards it like
 * any other end-to-end header); health checks are always answered.
 */
function fail(fault: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  const socket = req.socket;
  switch (fault) {
    case 'reset': // the connection breaks after the request was sent
      return void socket.destroy();
    case 'never': // accepted and never answered
      return;
    case 'garbage': // bytes that are not an HTTP response
      return void socket.end('SMTP READY\r\n\r\n');
    case 'cut': // a response broken off under way
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': '1000' });
      res.write('{"resourceType":"Patient",');
      return void setTimeout(() => socket.destroy(), 20);
    case 'stall': // a response that stops coming
      res.writeHead(200, { 'content-type': 'application/fhir+json', 'content-length': '1000' });
      return void res.write('{"resourceType":"Patient",');
    case 'late': // answered after the client has left
      return void setTimeout(() => res.writeHead(200, { 'content-type': 'application/fhir+json' }).end(patient), 150);
    default:
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/fhir+json' }).end(patient);
  }
}

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url === '/metadata') return void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"CapabilityStatement"}');
    const fault = String(req.headers['x-fault'] ?? 'none');
    received.set(fault, (received.get(fault) ?? 0) + 1);
    req.resume();
    req.once('end', () => fail(fault, req, res));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const up = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  const policy = compilePolicy(
    ['tiers:', `  - { name: all, upstreams: ['${up}'], timeoutMs: ${TIMEOUT_MS} }`, 'rules:', '  - { resources: ["*"], interactions: [read, create], tier: all }'].join('\n'),
    'upstream-faults.yaml',
  );
  loadSearchParameters();
  pools = new UpstreamPools(policy.tiers, { connections: CONNECTIONS, checkIntervalMs: 200 });
  await pools.start();
  const metrics = new ProxyMetrics(['all'], { processMetrics: false });
  ({ app } = await buildProxy({ policy, pools, metrics, logger: pino({ level: 'silent' }), base: '/fhir', bodyLimit: 1 << 20, maxDepth: 64 }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  origin = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await app?.close();
  await pools?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

interface Ended {
  status?: number;
  /** The OperationOutcome's issue code, when the answer is one. */
  code?: string;
  /** The connection closed before a whole response arrived. */
  cut?: boolean;
}

/** A read or a create on a fresh connection; `leaveAfterMs`: the client hangs up then. */
function request(kind: 'read' | 'create', fault: string, leaveAfterMs?: number): Promise<Ended> {
  const url = new URL(origin);
  const body = kind === 'create' ? patient : undefined;
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        agent: false,
        method: kind === 'create' ? 'POST' : 'GET',
        path: kind === 'create' ? '/fhir/Patient' : '/fhir/Patient/1',
        headers: { 'x-fault': fault, accept: 'application/fhir+json', ...(body ? { 'content-type': 'application/fhir+json', 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('error', () => resolve({ status: res.statusCode, cut: true }));
        res.on('aborted', () => resolve({ status: res.statusCode, cut: true }));
        res.on('end', () => {
          let code: string | undefined;
          try {
            const json = JSON.parse(text);
            if (json.resourceType === 'OperationOutcome') code = json.issue[0].code;
          } catch {
            return resolve({ status: res.statusCode, cut: true });
          }
          resolve({ status: res.statusCode, code });
        });
      },
    );
    req.on('error', () => resolve({ cut: true }));
    if (leaveAfterMs !== undefined) setTimeout(() => req.destroy(), leaveAfterMs);
    req.end(body);
  });
}

async function untilReady(): Promise<void> {
  while (!pools.ready()) await new Promise((r) => setTimeout(r, 20));
}

/** What each failure ends as, by kind of request (cut: the client's connection was cut). */
const FAULTS: Record<string, Record<'read' | 'create', Ended>> = {
  reset: { read: { status: 502, code: 'transient' }, create: { status: 502, code: 'transient' } },
  never: { read: { status: 504, code: 'timeout' }, create: { status: 504, code: 'timeout' } },
  garbage: { read: { status: 502, code: 'transient' }, create: { status: 502, code: 'transient' } },
  cut: { read: { status: 200, cut: true }, create: { status: 200, cut: true } },
  stall: { read: { status: 200, cut: true }, create: { status: 200, cut: true } },
};

describe.each(['read', 'create'] as const)('%s', (kind) => {
  test.each(Object.keys(FAULTS))('more "%s" failures than connections, then the tier serves', async (fault) => {
    // One after the other, each once health says the tier can serve: a failure may take the
    // member out until its next check passes, and each must leave nothing held behind it.
    for (let i = 0; i < CONNECTIONS + 2; i++) {
      await untilReady();
      expect(await request(kind, fault)).toEqual(FAULTS[fault][kind]);
    }
    await untilReady();
    const served = await Promise.all(Array.from({ length: CONNECTIONS }, () => request(kind, 'none')));
    expect(served).toEqual(Array(CONNECTIONS).fill({ status: kind === 'create' ? 201 : 200 }));
  });

  test('more clients leaving before the answer than connections, then the tier serves', async () => {
    await untilReady();
    const left = await Promise.all(Array.from({ length: CONNECTIONS + 2 }, () => request(kind, 'late', 30)));
    expect(left).toEqual(Array(CONNECTIONS + 2).fill({ cut: true }));
    const served = await Promise.all(Array.from({ length: CONNECTIONS }, () => request(kind, 'none')));
    expect(served).toEqual(Array(CONNECTIONS).fill({ status: kind === 'create' ? 201 : 200 }));
  });
});

test('an upstream that accepts and never answers: 504 for what was sent, 504 unsent for what waited', async () => {
  received.clear();
  await untilReady();
  const answers = await Promise.all(Array.from({ length: CONNECTIONS * 2 }, (_, i) => request(i % 2 ? 'create' : 'read', 'never')));
  expect(answers).toEqual(Array(CONNECTIONS * 2).fill({ status: 504, code: 'timeout' }));
  // Every connection carried one; a request that came while a connection was free again (a
  // loaded machine staggers the clients) may have been sent too, but none that was answered
  // 504 is sent afterwards: what waited past its deadline is dropped, not sent late.
  const sent = received.get('never') ?? 0;
  expect(sent).toBeGreaterThanOrEqual(CONNECTIONS);
  expect(sent).toBeLessThanOrEqual(CONNECTIONS * 2);
  await new Promise((r) => setTimeout(r, TIMEOUT_MS));
  expect(received.get('never')).toBe(sent);
});
