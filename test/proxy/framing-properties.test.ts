// Generated raw-socket requests, one property per class of what clients put on the wire:
// request lines, header sets, body framing with smuggled requests behind it, Expect with the
// body early, late or at once, and Upgrade followed by another request. Each runs against the
// real proxy (dist/) in front of recording upstreams, under the hostile-request campaign's
// policy and oracles (fuzz/), and every case must end the same way:
// - every answer is a complete HTTP/1.1 response with an X-Request-Id, and every answer the
//   proxy makes itself is an OperationOutcome with a diagnostic (never a 5xx: the upstreams
//   are healthy);
// - the connection is closed once the client has said its last word (each case ends with
//   `Connection: close` or with bytes that are no request), never left hanging;
// - the upstreams received exactly the requests whose answers came from them: nothing refused
//   reached one, and no answer to a forwarded request was lost;
// - nothing an upstream received breaks the campaign's upstream oracles (denied reads,
//   overrides, Expect, ambiguous framing or bodies).

import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { campaignPolicy } from '../../fuzz/harness/policy';
import { checkAnswer } from '../../fuzz/oracles/response';
import { checkUpstreamRequest } from '../../fuzz/oracles/upstream';
import { headRequests, parseResponses } from '../../fuzz/send/raw';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { rawExchange } from './raw-socket';

let dir: string;
let proxy: ProxyProcess;
let upstreams: RecordingUpstream[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-framing-'));
  upstreams = await Promise.all(['read', 'write', 'ops'].map((name) => startRecordingUpstream({ name })));
  const [read, write, ops] = upstreams;
  proxy = await startProxy({
    dir,
    args: ['--headers-timeout', '1000', '--request-timeout', '2000'],
    policy: campaignPolicy({ read: read.url, write: write.url, ops: ops.url }, 30_000),
  });
}, 120_000);

afterAll(async () => {
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  for (const u of upstreams ?? []) await u.close();
  rmSync(dir, { recursive: true, force: true });
});

const HOST = 'fhirguard.test';
const PATIENT = JSON.stringify({ resourceType: 'Patient', active: true });
/** A read the policy denies: it must never reach an upstream, however it is smuggled. */
const DENIED_GET = `GET /fhir/Practitioner/1 HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
const RUNS = { numRuns: Number(process.env.RUNS ?? 40), seed: Number(process.env.SEED ?? 20261205) };

interface Sent {
  /** Written one after the other, `gapMs` apart. */
  writes: string[];
  gapMs?: number;
  /** Which answers, in order, answer a HEAD (found from the request lines when not given). */
  heads?: boolean[];
}

/** Sends one case and checks every oracle; fast-check shrinks a failing case to its core. */
async function holds(c: Sent): Promise<void> {
  for (const u of upstreams) u.clear();
  const r = await rawExchange(proxy.origin, c.writes[0], { more: c.writes.slice(1), gapMs: c.gapMs ?? 0, waitMs: 1500 });
  const sent = c.writes.join('');
  const heads = c.heads ?? headRequests(sent);
  let parsed = parseResponses(r.text, heads);
  if (parsed.leftover > 0 && heads.some(Boolean)) {
    // Bytes that only look like a HEAD request are refused as no request at all: that refusal has a body.
    const plain = parseResponses(r.text);
    if (plain.leftover === 0 && plain.responses.length > 0 && plain.responses.every((x) => x.status === 400)) parsed = plain;
  }
  const { responses, leftover } = parsed;
  const finals = responses.filter((x) => x.status >= 200);
  const problems: string[] = [];
  if (!r.closed) problems.push('the connection was left open');
  if (leftover > 0) problems.push(`${leftover} bytes after the last whole response`);
  if (finals.length === 0) problems.push('no answer');
  finals.forEach((x, i) => {
    if (!x.headers['x-request-id']) problems.push(`${x.status} without X-Request-Id`);
    for (const v of checkAnswer({ status: x.status, headers: x.headers, body: x.body, head: heads[i] === true })) problems.push(`${v.oracle}: ${v.detail}`);
  });
  const traffic = upstreams.flatMap((u) => u.traffic().map((t) => ({ ...t, tier: u.name, rawHeaders: [] })));
  const served = finals.filter((x) => x.headers['x-served-by'] !== undefined).length;
  if (traffic.length !== served) problems.push(`${traffic.length} requests reached an upstream, ${served} answers came from one`);
  for (const t of traffic) for (const v of checkUpstreamRequest(t)) problems.push(`${v.oracle}: ${v.detail}`);
  expect({ sent, problems }).toEqual({ sent, problems: [] });
}

function request(line: string, headers: [string, string][], body = ''): string {
  return `${line}\r\n${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}${headers.length ? '\r\n' : ''}\r\n${body}`;
}

const closing: [string, string] = ['Connection', 'close'];
const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
/** Header values as clients and attackers write them: mostly printable, sometimes not. */
const headerValue = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[ -~]{0,40}$/) }, { weight: 1, arbitrary: fc.stringMatching(/^[\t\x00-\x1f\x7f-\xff ]{1,6}$/) });

describe('generated request lines', () => {
  const method = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'get', 'PRI', 'PROPFIND'), token);
  const target = fc.oneof(
    fc.constantFrom(
      '/fhir/Patient/1',
      '/fhir/Patient',
      '/fhir/Practitioner/1',
      '/fhir/Patient?name=x',
      '/fhir/Patient/_search',
      '/fhir/metadata',
      '/fhir',
      '/',
      '*',
      'http://evil.example/fhir/Practitioner/1',
      'fhirguard.test:443',
      '/fhir/Patient/1#frag',
      '/fhir/../fhir/Practitioner/1',
      '/fhir/Patient/%2e%2e/Practitioner/1',
      '/fhir/Patient/1?_method=DELETE',
      '/fhir/Patient/1 HTTP/1.1\r\nX-Injected: 1',
    ),
    fc.stringMatching(/^\/fhir\/[!-~]{0,30}$/),
    fc.stringMatching(/^[\x00-\xff]{0,20}$/),
  );
  const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', '', 'HTTP/2.0', 'HTTP/1.2', 'http/1.1', 'HTTP/01.1', 'HTTP/1.1 x', 'HTTP/0.9');

  test('every request line gets a whole answer and reaches an upstream only as decided', async () => {
    await fc.assert(
      fc.asyncProperty(method, target, version, fc.boolean(), async (m, t, v, withBody) => {
        const body = withBody ? PATIENT : '';
        const headers: [string, string][] = [['Host', HOST], ['Content-Type', 'application/fhir+json'], closing];
        if (withBody) headers.push(['Content-Length', String(body.length)]);
        await holds({ writes: [request(v ? `${m} ${t} ${v}` : `${m} ${t}`, headers, body)], heads: [m === 'HEAD'] });
      }),
      RUNS,
    );
  }, 120_000);
});

describe('generated header sets', () => {
  const field: fc.Arbitrary<[string, string]> = fc.oneof(
    fc.constantFrom<[string, string]>(
      ['Host', HOST],
      ['Host', 'evil.example'],
      ['Host', 'a b'],
      ['Host', 'evil.example/x'],
      ['Host', ''],
      ['X-HTTP-Method-Override', 'DELETE'],
      ['X-HTTP-Method', 'PATCH'],
      ['X-Method-Override', 'DELETE'],
      ['X-Original-URL', '/fhir/Practitioner/1'],
      ['X-Rewrite-URL', '/Practitioner/1'],
      ['Forwarded', 'for=203.0.113.9;host=fz-forwarded.example'],
      ['X-Forwarded-Host', 'fz-forwarded.example'],
      ['Keep-Alive', 'timeout=5'],
      ['TE', 'trailers'],
      ['Trailer', 'X-Checksum'],
      ['Proxy-Authorization', 'Basic eDp5'],
      ['Proxy-Connection', 'keep-alive'],
      ['Upgrade', 'h2c'],
      ['Expect', '100-continue'],
      ['Expect', 'garbage'],
      ['Content-Encoding', 'gzip'],
      ['Content-Encoding', 'identity'],
      ['Content-Type', 'text/plain'],
      ['Accept', 'application/fhir+xml'],
      ['Accept', '*/*'],
      ['Prefer', 'handling=lenient'],
      ['Authorization', 'Bearer x'],
    ),
    fc.tuple(token, headerValue),
  );
  const fields = fc.oneof(
    { weight: 8, arbitrary: fc.array(field, { maxLength: 10 }) },
    { weight: 1, arbitrary: fc.integer({ min: 80, max: 120 }).map((n) => Array.from({ length: n }, (_, i): [string, string] => [`X-F${i}`, 'v'])) },
    { weight: 1, arbitrary: fc.integer({ min: 14_000, max: 20_000 }).map((n): [string, string][] => [['X-Long', 'a'.repeat(n)]]) },
  );
  const kind = fc.constantFrom('read', 'denied-read', 'create');

  test('every header set gets a whole answer, and nothing refused or overriding reaches an upstream', async () => {
    await fc.assert(
      fc.asyncProperty(kind, fc.boolean(), fields, async (k, withHost, extra) => {
        const line = k === 'create' ? 'POST /fhir/Patient HTTP/1.1' : k === 'read' ? 'GET /fhir/Patient/1 HTTP/1.1' : 'GET /fhir/Practitioner/1 HTTP/1.1';
        const headers: [string, string][] = [...(withHost ? [['Host', HOST] as [string, string]] : []), ...extra, closing];
        if (k === 'create') headers.push(['Content-Type', 'application/fhir+json'], ['Content-Length', String(PATIENT.length)]);
        await holds({ writes: [request(line, headers, k === 'create' ? PATIENT : '')] });
      }),
      RUNS,
    );
  }, 120_000);
});

describe('generated body framing', () => {
  const te = fc.constantFrom(undefined, 'chunked', 'Chunked', 'chunked, identity', 'identity', 'gzip, chunked', ' chunked', 'chunked\t', 'xchunked', 'chunked, chunked');
  const cl = fc.constantFrom(undefined, 'exact', 'short', 'zero', '-1', '1e3', '0x10', 'list', 'two');
  const chunks = fc.constantFrom('good', 'bad-size', 'no-last', 'extension', 'lf-only');
  const after = fc.constantFrom('', DENIED_GET, 'GARBAGE\r\n\r\n', '0\r\n\r\n', `POST /fhir/Patient HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 2\r\n\r\n{}`);
  const target = fc.constantFrom('POST /fhir/Patient', 'PUT /fhir/Patient/1', 'GET /fhir/Patient/1', 'POST /fhir/Practitioner/_search');

  function chunked(body: string, shape: string): string {
    const size = body.length.toString(16);
    switch (shape) {
      case 'bad-size':
        return `zz\r\n${body}\r\n0\r\n\r\n`;
      case 'no-last':
        return `${size}\r\n${body}\r\n`;
      case 'extension':
        return `${size};ext=1\r\n${body}\r\n0\r\n\r\n`;
      case 'lf-only':
        return `${size}\n${body}\n0\n\n`;
      default:
        return `${size}\r\n${body}\r\n0\r\n\r\n`;
    }
  }

  test('Transfer-Encoding and Content-Length in any combination: whole answers, nothing smuggled', async () => {
    await fc.assert(
      fc.asyncProperty(target, te, cl, chunks, after, async (t, transferEncoding, contentLength, shape, trailing) => {
        // A chunked body left without its last chunk is a request still arriving: the slow-body
        // test covers its timeout.
        fc.pre(!(shape === 'no-last' && trailing === '' && transferEncoding !== undefined));
        const body = t.includes('_search') ? 'name=x' : JSON.stringify({ resourceType: 'Patient', id: '1' });
        const headers: [string, string][] = [
          ['Host', HOST],
          ['Content-Type', t.includes('_search') ? 'application/x-www-form-urlencoded' : 'application/fhir+json'],
        ];
        if (transferEncoding !== undefined) headers.push(['Transfer-Encoding', transferEncoding]);
        const lengths: Record<string, string[]> = {
          exact: [String(body.length)],
          short: [String(body.length - 3)],
          zero: ['0'],
          '-1': ['-1'],
          '1e3': ['1e3'],
          '0x10': ['0x10'],
          list: [`${body.length}, ${body.length}`],
          two: [String(body.length), String(body.length + 1)],
        };
        for (const v of contentLength ? lengths[contentLength] : []) headers.push(['Content-Length', v]);
        // The last request says it is the last; what follows it must never be taken for one.
        const sentBody = transferEncoding?.trim().toLowerCase().endsWith('chunked') ? chunked(body, shape) : body;
        await holds({ writes: [request(`${t} HTTP/1.1`, [...headers, closing], sentBody) + trailing] });
      }),
      RUNS,
    );
  }, 120_000);

  test('a request followed by more in the same write: each whole one answered in turn, the rest refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('read', 'denied', 'create'), { minLength: 1, maxLength: 3 }), after, async (kinds, trailing) => {
        const one = (k: string): string =>
          k === 'create'
            ? request(
                'POST /fhir/Patient HTTP/1.1',
                [
                  ['Host', HOST],
                  ['Content-Type', 'application/fhir+json'],
                  ['Content-Length', String(PATIENT.length)],
                ],
                PATIENT,
              )
            : request(k === 'read' ? 'GET /fhir/Patient/1 HTTP/1.1' : 'GET /fhir/Practitioner/1 HTTP/1.1', [['Host', HOST]]);
        // Unframed bytes at the end close the connection; a well-formed last request says so itself.
        const tail = trailing === '' || trailing.startsWith('POST') || trailing === DENIED_GET ? `GET /fhir/Patient/2 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n` : trailing;
        await holds({ writes: [kinds.map(one).join('') + tail] });
      }),
      RUNS,
    );
  }, 120_000);
});

describe('generated expectations', () => {
  const expectation = fc.constantFrom('100-continue', '100-Continue', '100-continue ', 'garbage', '200-ok', '', '100-continue, x', 'continue');
  const timing = fc.constantFrom('with-head', 'after-a-pause', 'in-pieces');
  const target = fc.constantFrom('POST /fhir/Patient', 'PUT /fhir/Patient/1', 'GET /fhir/Patient/1', 'POST /fhir/Practitioner/_search');

  test('Expect of any value, the body early, late or at once: 100 or 417, never forwarded', async () => {
    await fc.assert(
      fc.asyncProperty(target, expectation, timing, async (t, e, when) => {
        const search = t.includes('_search');
        const body = search ? 'name=x' : JSON.stringify({ resourceType: 'Patient', id: '1' });
        const head = request(`${t} HTTP/1.1`, [
          ['Host', HOST],
          ['Content-Type', search ? 'application/x-www-form-urlencoded' : 'application/fhir+json'],
          ['Content-Length', String(body.length)],
          ['Expect', e],
          closing,
        ]);
        const writes = when === 'with-head' ? [head + body] : when === 'after-a-pause' ? [head, body] : [head, body.slice(0, 3), body.slice(3)];
        await holds({ writes, gapMs: 30 });
      }),
      RUNS,
    );
  }, 120_000);
});

describe('generated upgrades', () => {
  const upgrade = fc.constantFrom('h2c', 'websocket', 'HTTP/2.0', 'TLS/1.2', 'h2c, websocket', '');
  const connection = fc.constantFrom('Upgrade', 'Upgrade, HTTP2-Settings', 'keep-alive, Upgrade', 'upgrade');
  const next = fc.constantFrom(
    'NOT HTTP AT ALL\r\n\r\n',
    '\x00\x01\x02\x03',
    DENIED_GET,
    `GET /fhir/Patient/2 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  );
  const target = fc.constantFrom('GET /fhir/Patient/1', 'GET /fhir/Practitioner/1', 'POST /fhir/Patient');

  test('an Upgrade is never taken nor forwarded, and what follows it is answered, then the connection closed', async () => {
    await fc.assert(
      fc.asyncProperty(target, upgrade, connection, next, fc.boolean(), async (t, u, c, follow, sameWrite) => {
        const post = t.startsWith('POST');
        const headers: [string, string][] = [
          ['Host', HOST],
          ['Connection', c],
          ['Upgrade', u],
          ['HTTP2-Settings', 'AAMAAABkAAQAoAAAAAIAAAAA'],
          ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
          ['Sec-WebSocket-Version', '13'],
        ];
        if (post) headers.push(['Content-Type', 'application/fhir+json'], ['Content-Length', String(PATIENT.length)]);
        const first = request(`${t} HTTP/1.1`, headers, post ? PATIENT : '');
        // A well-formed follow-up that keeps the connection gets a last request that closes it.
        const rest = follow === DENIED_GET ? `${follow}GET /fhir/Patient/3 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n` : follow;
        await holds(sameWrite ? { writes: [first + rest] } : { writes: [first, rest], gapMs: 50 });
        for (const u2 of upstreams) for (const seen of u2.traffic()) expect(seen.headers.upgrade).toBeUndefined();
      }),
      RUNS,
    );
  }, 120_000);
});
