// The tier dispatcher's failover, against real HTTP servers and real undici pools: a request
// that could not even be connected (nothing listens, the Unix socket is gone: what a worker
// that stopped accepting as it shuts down looks like) goes to another member whatever its
// method, and reaches exactly one upstream once; a write that was sent on a connection that
// then broke is never sent again; a read that broke is retried once.

import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dispatcher } from 'undici';
import { TierDispatcher } from '../../src/proxy/dispatcher';
import { UpstreamPools } from '../../src/proxy/pool';

let dir: string;
const servers: http.Server[] = [];
const pools: UpstreamPools[] = [];

/** An upstream on a Unix socket that counts the requests it got (health checks left out). */
async function upstream(name: string, answer: 'ok' | 'reset' | 'never' = 'ok'): Promise<{ spec: string; got: string[] }> {
  const got: string[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/metadata') {
      res.end('{}');
      return;
    }
    req.resume();
    req.once('end', () => {
      got.push(`${req.method} ${req.url}`);
      if (answer === 'reset') req.socket.destroy();
      else if (answer === 'never') return;
      else {
        res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/fhir+json' });
        res.end('{}');
      }
    });
  });
  const socketPath = path.join(dir, `${name}.sock`);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  servers.push(server);
  return { spec: `unix:${socketPath}`, got };
}

/** A loopback port nobody listens on (connections to it are refused). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A dispatcher over one tier whose members are `specs`, all taken as healthy, picked in order. */
function tier(specs: string[], o: { timeoutMs?: number; connections?: number } = {}): { dispatcher: TierDispatcher; retries: () => number } {
  const p = new UpstreamPools([{ name: 't', upstreams: specs, timeoutMs: o.timeoutMs ?? 5000 }], { connections: o.connections });
  pools.push(p);
  const t = p.get('t')!;
  for (const m of t.members) t.setHealthy(m, true, 'test');
  let retries = 0;
  return { dispatcher: new TierDispatcher(p, { onRetry: () => retries++ }), retries: () => retries };
}

function send(d: TierDispatcher, method: string, url: string, headers: Record<string, string> = {}): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const body = method === 'GET' ? undefined : Buffer.from(JSON.stringify({ resourceType: 'Patient' }));
    d.request(
      { origin: d.originOf('t'), path: url, method: method as Dispatcher.HttpMethod, headers: { 'content-type': 'application/fhir+json', ...headers }, ...(body ? { body } : {}) },
      (err, data) => {
        if (err) resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message });
        else data!.body.dump().then(() => resolve({ status: data!.statusCode }));
      },
    );
  });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-dispatch-'));
});

afterAll(async () => {
  for (const p of pools) await p.close();
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test.each(['POST', 'PUT', 'GET'])('%s to a member whose Unix socket is gone goes to the next member, once', async (method) => {
  const b = await upstream(`b-${method}`);
  const { dispatcher, retries } = tier([`unix:${path.join(dir, 'gone.sock')}`, b.spec]);
  const res = await send(dispatcher, method, '/Patient/p1');
  expect(res).toEqual({ status: method === 'POST' ? 201 : 200 });
  expect(b.got).toEqual([`${method} /Patient/p1`]);
  expect(retries()).toBe(1);
});

test('a create to a member that refuses the connection goes to the next member, once', async () => {
  const b = await upstream('b-refused');
  const { dispatcher, retries } = tier([`http://127.0.0.1:${await closedPort()}`, b.spec]);
  expect(await send(dispatcher, 'POST', '/Patient')).toEqual({ status: 201 });
  expect(b.got).toEqual(['POST /Patient']);
  expect(retries()).toBe(1);
});

test('a create whose connection breaks after it was sent is not sent again', async () => {
  const a = await upstream('a-reset', 'reset');
  const b = await upstream('b-after-reset');
  const { dispatcher, retries } = tier([a.spec, b.spec]);
  const res = await send(dispatcher, 'POST', '/Patient');
  expect(res.status).toBeUndefined();
  expect(a.got).toEqual(['POST /Patient']);
  expect(b.got).toEqual([]);
  expect(retries()).toBe(0);
});

test('a read whose connection breaks is retried once on the next member', async () => {
  const a = await upstream('a-reset-read', 'reset');
  const b = await upstream('b-after-reset-read');
  const { dispatcher, retries } = tier([a.spec, b.spec]);
  expect(await send(dispatcher, 'GET', '/Patient/p2')).toEqual({ status: 200 });
  expect([a.got, b.got]).toEqual([['GET /Patient/p2'], ['GET /Patient/p2']]);
  expect(retries()).toBe(1);
});

test('requests the HTTP client refuses before sending never leave a member without connections', async () => {
  const a = await upstream('a-refused-before-sending');
  const { dispatcher } = tier([a.spec], { connections: 2 });
  // undici refuses an Expect header while building the request; each such refusal used to
  // leave one of the member's connections marked busy for good.
  for (let i = 0; i < 5; i++) expect(await send(dispatcher, 'POST', '/Patient', { expect: '100-continue' })).toEqual({ error: 'UND_ERR_NOT_SUPPORTED' });
  expect(await send(dispatcher, 'POST', '/Patient')).toEqual({ status: 201 });
  expect(a.got).toEqual(['POST /Patient']);
});

test("a request still waiting for a connection when the tier's timeout passes ends, and is never sent", async () => {
  const a = await upstream('a-never-answers', 'never');
  const { dispatcher } = tier([a.spec], { connections: 1, timeoutMs: 400 });
  const [held, waiting] = await Promise.all([send(dispatcher, 'POST', '/Patient/held'), send(dispatcher, 'POST', '/Patient/waiting')]);
  expect([held, waiting]).toEqual([{ error: 'UND_ERR_HEADERS_TIMEOUT' }, { error: 'UND_ERR_HEADERS_TIMEOUT' }]);
  // The held request's connection is closed by its own timeout; the waiting one was aborted
  // before any connection carried it.
  await new Promise((r) => setTimeout(r, 300));
  expect(a.got).toEqual(['POST /Patient/held']);
});
