// HTTP-level cases over keep-alive connections (an undici Pool), the way a busy client
// sends them. A case a client library will not send as written (a header value it refuses,
// an asterisk target) is reported as such so the campaign can send its bytes raw instead.

import { errors, Pool } from 'undici';
import type { HttpCase } from '../generate/case';
import type { Answer } from '../oracles/response';

export type HttpOutcome = { kind: 'answer'; answer: Answer } | { kind: 'client-refused'; why: string } | { kind: 'no-answer'; timedOut: boolean; why: string };

/**
 * A keep-alive pool that can be swapped for a fresh one: undici does not always honour an
 * abort on a request whose connection went wrong, so a request past its time has its whole
 * pool destroyed and replaced (requests that die with it are sent again on the new one).
 */
export class HttpPool {
  private pool: Pool;
  private generation = 0;

  constructor(
    private readonly origin: string,
    private readonly connections: number,
  ) {
    this.pool = this.fresh();
  }

  private fresh(): Pool {
    return new Pool(this.origin, { connections: this.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  async send(c: HttpCase, timeoutMs: number): Promise<HttpOutcome> {
    for (let attempt = 0; ; attempt++) {
      const generation = this.generation;
      const out = await sendOn(this.pool, c, timeoutMs);
      if (out.kind === 'no-answer' && out.timedOut && generation === this.generation) {
        this.generation++;
        const old = this.pool;
        this.pool = this.fresh();
        void old.destroy().catch(() => undefined);
      }
      // Lost with a pool another request's timeout destroyed: not this request's fault.
      if (out.kind === 'no-answer' && !out.timedOut && generation !== this.generation && attempt < 2) continue;
      return out;
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNDICI_REFUSES = new Set(['transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'content-length']);

/**
 * Why undici would refuse to send a case as written, checked before handing it over: a pool
 * that has refused a request stops answering later ones (undici 7), so such cases never
 * reach it and go raw instead.
 */
export function unsendable(c: HttpCase): string | undefined {
  if (!/^\/[\x21-\x7e]*$/.test(c.target)) return 'target is not printable ASCII in origin-form';
  if (!TOKEN.test(c.method) || c.method.toUpperCase() === 'CONNECT') return `method ${c.method}`;
  for (const [n, v] of c.headers) {
    if (!TOKEN.test(n) || UNDICI_REFUSES.has(n.toLowerCase())) return `header name ${n}`;
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(v)) return `header value of ${n}`;
  }
  return undefined;
}

async function sendOn(pool: Pool, c: HttpCase, timeoutMs: number): Promise<HttpOutcome> {
  const why = unsendable(c);
  if (why) return { kind: 'client-refused', why };
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      abort.abort(new Error('timeout'));
      resolve('timeout');
    }, timeoutMs);
  });
  const exchange = (async (): Promise<HttpOutcome> => {
    try {
      const res = await pool.request({ method: c.method, path: c.target, headers: c.headers.flat(), body: c.body, signal: abort.signal });
      const body = await res.body.text();
      return { kind: 'answer', answer: { status: res.statusCode, headers: res.headers, body, head: c.method === 'HEAD' } };
    } catch (e) {
      if (e instanceof errors.InvalidArgumentError || e instanceof errors.NotSupportedError) return { kind: 'client-refused', why: (e as Error).message };
      return { kind: 'no-answer', timedOut: abort.signal.aborted, why: `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.trim() };
    }
  })();
  const first = await Promise.race([exchange, timedOut]);
  clearTimeout(timer);
  return first === 'timeout' ? { kind: 'no-answer', timedOut: true, why: `no answer within ${timeoutMs} ms` } : first;
}

/** The bytes of an HTTP case as one Content-Length framed request that closes its connection. */
export function rawBytesOf(c: HttpCase, host: string): Buffer {
  const head = [`${c.method} ${c.target} HTTP/1.1`, `host: ${host}`, ...c.headers.map(([n, v]) => `${n}: ${v}`), `content-length: ${c.body?.length ?? 0}`, 'connection: close'].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), c.body ?? Buffer.alloc(0)]);
}
