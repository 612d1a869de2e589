// Raw-socket cases: write the bytes (apart, when the case says so), half-close if asked, and
// collect everything the proxy answers until it closes the connection or `waitMs` passes
// after the last write. A connection still open then, with a request unanswered, is a finding.

import net from 'node:net';
import type { RawCase } from '../generate/case';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawOutcome {
  responses: RawResponse[];
  /** The proxy closed the connection (rather than the wait ending first). */
  closed: boolean;
  /** Bytes after the last whole response (an answer cut short). */
  leftover: number;
  error?: string;
}

export function sendRaw(port: number, c: RawCase, waitMs: number): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let error: string | undefined;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const { responses, leftover } = parseResponses(Buffer.concat(chunks).toString('latin1'), headRequests(Buffer.concat(c.writes).toString('latin1')));
      resolve({ responses, closed, leftover, error });
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      finish(true);
    });
    // Bounded whatever the proxy does: the writes' gaps plus the wait, from the connect on.
    const hardStop = setTimeout(() => finish(false), waitMs + c.gapMs * c.writes.length + 1_000);
    socket.on('close', () => clearTimeout(hardStop));
    socket.on('connect', async () => {
      for (const [i, w] of c.writes.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, c.gapMs));
        if (done || socket.destroyed) return;
        socket.write(w);
      }
      if (c.end) socket.end();
      timer = setTimeout(() => finish(false), waitMs);
    });
  });
}

/**
 * Which of the pipelined requests in `sent` are HEAD, in order: their answers announce a length
 * they do not send. Request lines are found at the start and after each blank line, which is
 * where a request that the proxy reads as one can start.
 */
export function headRequests(sent: string): boolean[] {
  const heads: boolean[] = [];
  for (const m of sent.matchAll(/(?:^|\r?\n\r?\n)([A-Z]+) \S+ HTTP\/1\.[01]\r?\n/g)) heads.push(m[1] === 'HEAD');
  return heads;
}

/**
 * Splits one connection's bytes into HTTP/1.x responses (interim 1xx included). `heads` says
 * which final answers, in order, answer a HEAD (no body whatever their Content-Length); without
 * it, a HEAD answer is recognised only when nothing follows it.
 */
export function parseResponses(text: string, heads: readonly boolean[] = []): { responses: RawResponse[]; leftover: number } {
  const responses: RawResponse[] = [];
  let finals = 0;
  let rest = text;
  while (/^HTTP\/1\.[01] \d{3}/.test(rest)) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(statusLine.split(' ')[1]);
    let bodyStart = end + 4;
    let bodyEnd = bodyStart;
    let body = '';
    const head = status >= 200 && heads[finals] === true;
    if (status >= 200) finals++;
    if (status >= 200 && status !== 204 && status !== 304 && !head) {
      if (headers['content-length'] !== undefined) {
        bodyEnd = bodyStart + Number(headers['content-length']);
        // An answer to HEAD announces a length it does not send: nothing after its head.
        if (bodyEnd > rest.length && rest.length === bodyStart) bodyEnd = bodyStart;
        else if (!(bodyEnd <= rest.length)) break;
        body = rest.slice(bodyStart, bodyEnd);
      } else if ((headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked') {
        let at = bodyStart;
        let complete = false;
        for (;;) {
          const lineEnd = rest.indexOf('\r\n', at);
          if (lineEnd < 0) break;
          const size = parseInt(rest.slice(at, lineEnd), 16);
          if (!Number.isFinite(size)) break;
          if (size === 0) {
            const trailerEnd = rest.indexOf('\r\n', lineEnd + 2);
            at = trailerEnd < 0 ? rest.length : trailerEnd + 2;
            complete = true;
            break;
          }
          body += rest.slice(lineEnd + 2, lineEnd + 2 + size);
          at = lineEnd + 2 + size + 2;
        }
        if (!complete) break;
        bodyEnd = at;
      } else {
        bodyEnd = rest.length; // delimited by close
        body = rest.slice(bodyStart);
      }
    }
    bodyStart = bodyEnd;
    responses.push({ status, headers, body });
    rest = rest.slice(bodyStart);
  }
  return { responses, leftover: rest.length };
}
