// A member's connections against requests undici refuses while building them, on real undici
// pools and a real upstream: however many such refusals, on either API the proxy uses
// (request() for health checks, dispatch() for every forwarded request), the member keeps
// every connection. undici's Pool took each refusal for a busy connection and waited for it
// for ever: after as many refusals as connections, every request hung. And a health check
// cannot get stuck behind connections that never come free: it fails in bounded time, so
// the member stops counting as able to serve.

import http from 'node:http';
import type net from 'node:net';
import type { Dispatcher } from 'undici';
import { UpstreamPools, type Member } from '../../src/proxy/pool';

let server: http.Server;
let origin: string;
const pools: UpstreamPools[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/trickle') {
      // A response that keeps coming for as long as anyone reads it: its connection stays taken.
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      const timer = setInterval(() => res.write(' '), 20);
      res.on('close', () => clearInterval(timer));
      return;
    }
    req.once('end', () => res.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Patient"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const p of pools) await p.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function member(connections: number, timeoutMs = 5000): Member {
  const p = new UpstreamPools([{ name: 't', upstreams: [origin], timeoutMs }], { connections });
  pools.push(p);
  return p.get('t')!.members[0];
}

/** The request() API, as health checks use it: the status, or the error's code. */
function request(m: Member, headers: Record<string, string>): Promise<number | string> {
  return m.client
    .request({ path: '/Patient', method: 'POST', headers: { 'content-type': 'application/fhir+json', ...headers }, body: '{"resourceType":"Patient"}' })
    .then(async (res) => {
      await res.body.dump();
      return res.statusCode;
    })
    .catch((err: NodeJS.ErrnoException) => err.code ?? err.message);
}

/** The dispatch() API, as forwarding uses it: the status, or the error's code. */
function dispatch(m: Member, headers: Record<string, string>): Promise<number | string> {
  return new Promise((resolve) => {
    let status = 0;
    const handler: Dispatcher.DispatchHandler = {
      onConnect: () => undefined,
      onHeaders: (code) => ((status = code), true),
      onData: () => true,
      onComplete: () => resolve(status),
      onError: (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message),
    };
    m.client.dispatch({ path: '/Patient/1', method: 'GET', headers }, handler);
  });
}

/** Headers undici will not send: each refused before any connection carries the request. */
const REFUSED: Record<string, Record<string, string>> = {
  expect: { expect: '100-continue' },
  upgrade: { upgrade: 'h2c' },
  'transfer-encoding': { 'transfer-encoding': 'chunked' },
  'keep-alive': { 'keep-alive': 'timeout=5' },
  'a control character': { 'x-note': 'a\x01b' },
};

describe.each([
  ['request()', request],
  ['dispatch()', dispatch],
])('through %s', (_api, send) => {
  test.each(Object.keys(REFUSED))('more refusals (%s) than connections leave every connection usable', async (shape) => {
    const m = member(2);
    for (let i = 0; i < 5; i++) expect(typeof (await send(m, REFUSED[shape]))).toBe('string');
    // Both connections at once: a connection lost to a refusal would leave one of these waiting for ever.
    expect(await Promise.all([send(m, {}), send(m, {})])).toEqual([200, 200]);
  });
});

test('a health check stuck behind connections that never come free fails, in bounded time', async () => {
  const m = member(2, 300);
  m.tier.setHealthy(m, true, 'test');
  const held = [0, 1].map(() => m.client.request({ path: '/trickle', method: 'GET' }).then((res) => res.body));
  const bodies = await Promise.all(held);
  for (const b of bodies) b.on('data', () => undefined).on('error', () => undefined);
  await m.check(200);
  expect(m.healthy).toBe(false);
  expect(m.lastError).toMatch(/health check failed/);
  for (const b of bodies) b.destroy();
});
