// Raw-socket cases: HTTP/1.1 framing no client library produces. Request smuggling shapes
// (Transfer-Encoding with Content-Length, two lengths, obfuscated codings, bad chunks),
// Expect (100-continue, with the body late or never, and unknown expectations), Upgrade
// followed by a malformed request, pipelined requests, unframed bytes after a request,
// missing or repeated Host, oversized request lines and header sections, bare LF, obsolete
// line folding, HTTP/1.0 and the HTTP/2 preface, slow writes (bounded) and a header section
// left unfinished (the proxy's header timeout must end it).

import fc from 'fast-check';
import type { HttpCase, RawCase } from './case';
import { CASE_HEADER } from './case';
import { httpCaseArb } from './request';

const HOST = 'fhirguard.test';

interface Head {
  line: string;
  headers: [string, string][];
  body: Buffer;
}

function headOf(c: HttpCase): Head {
  return { line: `${c.method} ${c.target} HTTP/1.1`, headers: [['host', HOST], ...c.headers], body: c.body ?? Buffer.alloc(0) };
}

function bytes(h: Head, eol = '\r\n'): Buffer {
  const text = [h.line, ...h.headers.map(([n, v]) => `${n}: ${v}`)].join(eol) + eol + eol;
  return Buffer.concat([Buffer.from(text, 'latin1'), h.body]);
}

function withLength(h: Head): Head {
  return { ...h, headers: [...h.headers, ['content-length', String(h.body.length)]] };
}

function chunked(body: Buffer): Buffer {
  return body.length ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]) : Buffer.from('0\r\n\r\n');
}

const GET_PLAIN = (close: boolean) => Buffer.from(`GET /fhir/Patient/1 HTTP/1.1\r\nhost: ${HOST}\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
const GET_DENIED = `GET /fhir/Practitioner/1 HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`;

type Shape = (h: Head) => Omit<RawCase, 'kind' | 'klass'>;

const one = (b: Buffer, end = true): Omit<RawCase, 'kind' | 'klass'> => ({ writes: [b], gapMs: 0, end });

const SHAPES: Record<string, Shape> = {
  'te-and-cl': (h) =>
    one(
      Buffer.concat([
        bytes({ ...h, headers: [...h.headers, ['transfer-encoding', 'chunked'], ['content-length', String(h.body.length)]], body: Buffer.alloc(0) }),
        chunked(h.body),
        Buffer.from(GET_DENIED),
      ]),
    ),
  'cl-and-te': (h) =>
    one(Buffer.concat([bytes({ ...h, headers: [...h.headers, ['content-length', '4'], ['transfer-encoding', 'chunked']], body: Buffer.alloc(0) }), Buffer.from(`0\r\n\r\n${GET_DENIED}`)])),
  'two-lengths': (h) => one(bytes({ ...h, headers: [...h.headers, ['content-length', String(h.body.length)], ['content-length', String(h.body.length + 5)]] })),
  'length-list': (h) => one(bytes({ ...h, headers: [...h.headers, ['content-length', `${h.body.length}, ${h.body.length}`]] })),
  'te-obfuscated': (h) =>
    one(
      Buffer.concat([
        bytes({
          ...h,
          headers: [...h.headers, ['transfer-encoding', ['xchunked', 'chunked, identity', ' chunked', 'chunked\t', 'CHUNKED', 'gzip, chunked', 'identity'][h.body.length % 7]]],
          body: Buffer.alloc(0),
        }),
        chunked(h.body),
      ]),
    ),
  'te-space-colon': (h) => one(Buffer.concat([Buffer.from(`${h.line}\r\nhost: ${HOST}\r\ntransfer-encoding : chunked\r\ncontent-length: 0\r\n\r\n`), chunked(h.body)])),
  'bad-chunk': (h) =>
    one(
      Buffer.concat([
        bytes({ ...h, headers: [...h.headers, ['transfer-encoding', 'chunked']], body: Buffer.alloc(0) }),
        Buffer.from(['zz\r\nabc\r\n0\r\n\r\n', '5;' + 'x'.repeat(20_000) + '\r\nhello\r\n0\r\n\r\n', '-1\r\n\r\n', 'ffffffffffffffffff\r\nx\r\n'][h.body.length % 4]),
      ]),
    ),
  'chunked-ok': (h) => one(Buffer.concat([bytes({ ...h, headers: [...h.headers, ['transfer-encoding', 'chunked']], body: Buffer.alloc(0) }), chunked(h.body)])),
  'expect-continue': (h) => ({ writes: [bytes({ ...withLength(h), headers: [...withLength(h).headers, ['expect', '100-continue']], body: Buffer.alloc(0) }), h.body], gapMs: 20, end: true }),
  'expect-continue-body-at-once': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ['expect', '100-continue']] })),
  'expect-other': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ['expect', ['garbage', '100-Continue', '200-ok', '', '100-continue, x'][h.body.length % 5]]] })),
  'upgrade-then-malformed': (h) => ({
    writes: [bytes({ ...withLength(h), headers: [...withLength(h).headers, ['connection', 'Upgrade'], ['upgrade', h.body.length % 2 ? 'websocket' : 'h2c']] }), Buffer.from('GARBAGE\r\n\r\n')],
    gapMs: 50,
    end: false,
  }),
  pipelined: (h) => one(Buffer.concat([bytes(withLength(h)), GET_PLAIN(false), Buffer.from(GET_DENIED), bytes(withLength(h))])),
  // No half-close: the proxy must answer the whole request, then refuse what follows and close.
  'trailing-bytes': (h) =>
    one(Buffer.concat([bytes(withLength(h)), Buffer.from(['\r\nxyz', 'G', 'GET /fhir/Practitioner/1 HTTP/1.1\r\n', '\x00\x01\x02', '0\r\n\r\n'][h.body.length % 5], 'latin1')]), false),
  'no-host': (h) => one(bytes({ ...withLength(h), headers: withLength(h).headers.filter(([n]) => n !== 'host') })),
  'two-hosts': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ['host', 'evil.example']] })),
  'long-request-line': (h) => one(bytes({ ...withLength(h), line: `GET /fhir/Patient?name=${'a'.repeat(17_000 + h.body.length)} HTTP/1.1` })),
  'many-headers': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ...Array.from({ length: 2100 }, (_, i): [string, string] => [`x-${i}`, '1'])] })),
  'bare-lf': (h) => one(bytes(withLength(h), '\n')),
  'obs-fold': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ['x-fold', 'a\r\n b'], ['x-http-method-override', 'DELETE\r\n  x']] })),
  'header-ctl': (h) => one(bytes({ ...withLength(h), headers: [...withLength(h).headers, ['x-nul', 'a\x00b'], ['bad name', 'x']] })),
  http10: (h) => one(bytes({ ...withLength(h), line: h.line.replace('HTTP/1.1', 'HTTP/1.0') })),
  'http2-preface': () => one(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')),
  'absolute-form': (h) => one(bytes({ ...withLength(h), line: h.line.replace(' /', ' http://evil.example/') })),
  'slow-writes': (h) => {
    const all = bytes(withLength(h));
    const cut = [Math.floor(all.length / 3), Math.floor((2 * all.length) / 3)];
    return { writes: [all.subarray(0, cut[0]), all.subarray(cut[0], cut[1]), all.subarray(cut[1])], gapMs: 150, end: true };
  },
  'unfinished-headers': (h) => ({ writes: [Buffer.from(`${h.line}\r\nhost: ${HOST}\r\nx-a: 1\r\n`)], gapMs: 0, end: false }),
};

const SHAPE_NAMES = Object.keys(SHAPES);

/** A raw case: an HTTP case's request wrapped in one framing shape. */
export const rawCaseArb: fc.Arbitrary<RawCase> = fc
  .tuple(fc.oneof({ weight: 40, arbitrary: fc.constantFrom(...SHAPE_NAMES.filter((s) => s !== 'unfinished-headers')) }, { weight: 1, arbitrary: fc.constant('unfinished-headers') }), httpCaseArb)
  .map(([shape, c]) => ({ kind: 'raw', klass: `framing:${shape}`, ...SHAPES[shape](headOf(c)) }) satisfies RawCase);

/** Stamps a raw case's requests with the case header, so upstream oracles can name it. */
export function stampRaw(c: RawCase, index: number): RawCase {
  const stamp = (b: Buffer) =>
    Buffer.from(
      b.toString('latin1').replace(/\r?\nhost: fhirguard\.test\r?\n/gi, (m) => `${m}${CASE_HEADER}: ${index}${m.startsWith('\r') ? '\r\n' : '\n'}`),
      'latin1',
    );
  return { ...c, writes: c.writes.map(stamp) };
}
