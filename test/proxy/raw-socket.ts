// A client of raw bytes for the proxy's HTTP-level tests: sends exactly what a test writes
// (framing no well-behaved client would produce, writes split or delayed) and collects every
// byte the proxy answers until it closes the connection or the wait ends.

import net from 'node:net';

export interface RawExchange {
  /** Everything received, as latin1 text (headers and bodies byte for byte). */
  text: string;
  /** The proxy closed the connection (rather than the wait ending first). */
  closed: boolean;
}

export interface RawOptions {
  /** Writes after the first, each after `gapMs`. */
  more?: string[];
  gapMs?: number;
  /** How long to wait for the proxy to close the connection after the last write. */
  waitMs?: number;
}

export function rawExchange(origin: string, first: string, o: RawOptions = {}): Promise<RawExchange> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    let done = false;
    let waitTimer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(waitTimer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => (chunks.length ? finish(true) : reject(err)));
    socket.on('connect', async () => {
      socket.write(first);
      for (const part of o.more ?? []) {
        await new Promise((r) => setTimeout(r, o.gapMs ?? 100));
        if (done || socket.destroyed) return;
        socket.write(part);
      }
      waitTimer = setTimeout(() => finish(false), o.waitMs ?? 5000);
    });
  });
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits the bytes of one connection into its HTTP/1.1 responses (Content-Length framed, as fhirguard answers). */
export function parseResponses(text: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    let bodyEnd = end + 4;
    if (headers['content-length'] !== undefined) bodyEnd += Number(headers['content-length']);
    else if (headers['transfer-encoding'] === 'chunked') {
      let at = end + 4;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at);
        const size = parseInt(rest.slice(at, lineEnd), 16);
        at = lineEnd + 2 + size + 2;
        if (size === 0 || lineEnd < 0) break;
      }
      bodyEnd = at;
    }
    const bodyRaw = rest.slice(end + 4, bodyEnd);
    out.push({ status, headers, body: status === 100 ? '' : bodyRaw });
    rest = rest.slice(bodyEnd);
  }
  return out;
}
