// The one forwarding path's failover (src/proxy/forward.ts, failover.ts), through the front
// door's own request path in this process, against real HTTP servers and real undici pools
// whose members are all taken as healthy (no health checks run, so a member that cannot be
// reached is still picked first): a request that could not even be connected (nothing
// listens, the Unix socket is gone: what a worker that stopped accepting as it shuts down
// looks like) goes to another member whatever its method, and reaches exactly one upstream
// once; a write that was sent on a connection that then broke is never sent again; a read
// that broke is retried once. Each write reaches its upstream as the exact bytes sent.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loadSearchParameters } from '../../src/fhir/search-parameters';
import { ProxyMetrics } from '../../src/metrics/registry';
import { compilePolicy } from '../../src/policy';
import { UpstreamPools } from '../../src/proxy/pool';
import { buildProxy } from '../../src/proxy/server';
import { closeClients, send } from '../helpers/http-client';
import { parseMetrics, value } from '../helpers/metrics-text';

let dir: string;
const servers: http.Server[] = [];
const fronts: { app: FastifyInstance; pools: UpstreamPools }[] = [];

interface Received {
  /** `METHOD path` of each request (health checks left out). */
  got: string[];
  /** The body bytes of each request, in the same order. */
  bodies: Buffer[];
  /** The Content-Type of each request, in the same order. */
  types: (string | undefined)[];
}

/** An upstream on a Unix socket that records the requests it got. */
async function upstream(name: string, answer: 'ok' | 'reset' | 'never' = 'ok'): Promise<Received & { spec: string }> {
  const received: Received = { got: [], bodies: [], types: [] };
  const server = http.createServer((req, res) => {
    // Health checks (one runs at once when a member is marked down) are answered and left out.
    if (req.url === '/metadata') return void res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => {
      received.got.push(`${req.method} ${req.url}`);
      received.bodies.push(Buffer.concat(chunks));
      received.types.push(req.headers['content-type']);
      if (answer === 'reset') req.socket.destroy();
      else if (answer === 'never') return;
      else res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient"}');
    });
  });
  const socketPath = path.join(dir, `${name}.sock`);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  servers.push(server);
  return { spec: `unix:${socketPath}`, ...received };
}

/** A loopback port nobody listens on (connections to it are refused). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * A front door whose one tier has the members `specs`, all taken as healthy and picked in
 * order; `retries()` reads its fhirguard_upstream_retries_total.
 */
async function front(specs: string[], o: { timeoutMs?: number; connections?: number } = {}): Promise<{ origin: string; retries: () => Promise<number> }> {
  const policy = compilePolicy(
    [
      'tiers:',
      `  - { name: t, upstreams: [${specs.map((s) => `'${s}'`).join(', ')}], timeoutMs: ${o.timeoutMs ?? 5000} }`,
      'rules:',
      '  - { resources: ["*"], interactions: [read, create, update], tier: t }',
    ].join('\n'),
    'forward.yaml',
  );
  const pools = new UpstreamPools(policy.tiers, { connections: o.connections });
  const tier = pools.get('t')!;
  for (const m of tier.members) tier.setHealthy(m, true, 'test');
  const metrics = new ProxyMetrics(['t'], { processMetrics: false });
  const { app } = await buildProxy({ policy, pools, metrics, logger: pino({ level: 'silent' }), base: '/fhir', bodyLimit: 1 << 20, maxDepth: 64 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  fronts.push({ app, pools });
  return {
    origin: `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`,
    retries: async () => value(parseMetrics(await metrics.registry.metrics()), 'fhirguard_upstream_retries_total', { tier: 't' }),
  };
}

const patient = '{ "resourceType" : "Patient",\n  "id": "p1", "active":true }';

function request(origin: string, method: string, target: string): Promise<{ status: number; code?: string }> {
  return send(origin, method, target, { fresh: true, ...(method === 'GET' ? {} : { body: patient }) }).then((r) => ({
    status: r.status,
    ...(r.json?.resourceType === 'OperationOutcome' ? { code: r.json.issue[0].code } : {}),
  }));
}

beforeAll(() => {
  loadSearchParameters();
  dir = mkdtempSync(path.join(tmpdir(), 'fg-forward-'));
});

afterAll(async () => {
  closeClients();
  for (const f of fronts) {
    await f.app.close();
    await f.pools.close();
  }
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

test.each(['POST', 'PUT', 'GET'])('%s to a member whose Unix socket is gone goes to the next member, once', async (method) => {
  const b = await upstream(`b-${method}`);
  const { origin, retries } = await front([`unix:${path.join(dir, 'gone.sock')}`, b.spec]);
  const target = method === 'POST' ? '/fhir/Patient' : '/fhir/Patient/p1';
  expect(await request(origin, method, target)).toEqual({ status: method === 'POST' ? 201 : 200 });
  expect(b.got).toEqual([`${method} ${target.slice('/fhir'.length)}`]);
  expect(await retries()).toBe(1);
});

test('a create to a member that refuses the connection goes to the next member, once', async () => {
  const b = await upstream('b-refused');
  const { origin, retries } = await front([`http://127.0.0.1:${await closedPort()}`, b.spec]);
  expect(await request(origin, 'POST', '/fhir/Patient')).toEqual({ status: 201 });
  expect(b.got).toEqual(['POST /Patient']);
  expect(await retries()).toBe(1);
});

test('a create whose connection breaks after it was sent is not sent again: 502', async () => {
  const a = await upstream('a-reset', 'reset');
  const b = await upstream('b-after-reset');
  const { origin, retries } = await front([a.spec, b.spec]);
  expect(await request(origin, 'POST', '/fhir/Patient')).toEqual({ status: 502, code: 'transient' });
  expect(a.got).toEqual(['POST /Patient']);
  expect(b.got).toEqual([]);
  expect(await retries()).toBe(0);
});

test('an update whose connection breaks after it was sent is not sent again: 502', async () => {
  const a = await upstream('a-reset-update', 'reset');
  const b = await upstream('b-after-reset-update');
  const { origin, retries } = await front([a.spec, b.spec]);
  expect(await request(origin, 'PUT', '/fhir/Patient/p1')).toEqual({ status: 502, code: 'transient' });
  expect([a.got, b.got]).toEqual([['PUT /Patient/p1'], []]);
  expect(await retries()).toBe(0);
});

test('a read whose connection breaks is retried once on the next member', async () => {
  const a = await upstream('a-reset-read', 'reset');
  const b = await upstream('b-after-reset-read');
  const { origin, retries } = await front([a.spec, b.spec]);
  expect(await request(origin, 'GET', '/fhir/Patient/p2')).toEqual({ status: 200 });
  expect([a.got, b.got]).toEqual([['GET /Patient/p2'], ['GET /Patient/p2']]);
  expect(await retries()).toBe(1);
});

test('a read is retried once only: a second broken member gives 502', async () => {
  const broken = await Promise.all(['a', 'b', 'c'].map((n) => upstream(`${n}-reset-every-time`, 'reset')));
  const { origin, retries } = await front(broken.map((u) => u.spec));
  expect(await request(origin, 'GET', '/fhir/Patient/p3')).toEqual({ status: 502, code: 'transient' });
  // The first member and one other were asked; the third never was.
  expect(broken.map((u) => u.got.length).sort()).toEqual([0, 1, 1]);
  expect(broken[0].got).toEqual(['GET /Patient/p3']);
  expect(await retries()).toBe(1);
});

test("a request still waiting for a connection when the tier's timeout passes gets 504, and is never sent", async () => {
  const a = await upstream('a-never-answers', 'never');
  const { origin } = await front([a.spec], { connections: 1, timeoutMs: 400 });
  const [held, waiting] = await Promise.all([request(origin, 'POST', '/fhir/Patient'), request(origin, 'PUT', '/fhir/Patient/p1')]);
  expect([held, waiting]).toEqual([
    { status: 504, code: 'timeout' },
    { status: 504, code: 'timeout' },
  ]);
  // The held request's connection is closed by its own deadline; the waiting one was dropped
  // before any connection carried it.
  await new Promise((r) => setTimeout(r, 300));
  expect(a.got).toHaveLength(1);
});

test('a write reaches its upstream as the bytes the client sent, and so does a retried one', async () => {
  const b = await upstream('b-bytes');
  const { origin } = await front([`unix:${path.join(dir, 'gone-too.sock')}`, b.spec]);
  expect(await request(origin, 'POST', '/fhir/Patient')).toEqual({ status: 201 });
  expect(await request(origin, 'PUT', '/fhir/Patient/p1')).toEqual({ status: 200 });
  expect(b.bodies.map((x) => x.toString())).toEqual([patient, patient]);
  expect(b.types).toEqual(['application/fhir+json', 'application/fhir+json']);
});
