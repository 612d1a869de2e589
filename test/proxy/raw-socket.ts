// A client of raw bytes for the proxy's HTTP-level tests: sends exactly what a test writes
// (framing no well-behaved client would produce, writes split or delayed) and collects every
// byte the proxy answers until it closes the connection or the wait ends. Responses are split
// by the hostile-request campaign's parser, so both read answers the same way.

import net from 'node:net';
import { parseResponses as parseConnection, type RawResponse } from '../../fuzz/send/raw';

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
  /** Half-close (FIN) right after the first write, as a client that has said everything does. */
  halfClose?: boolean;
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
      if (o.halfClose) socket.end(first);
      else socket.write(first);
      for (const part of o.more ?? []) {
        await new Promise((r) => setTimeout(r, o.gapMs ?? 100));
        if (done || socket.destroyed) return;
        socket.write(part);
      }
      waitTimer = setTimeout(() => finish(false), o.waitMs ?? 5000);
    });
  });
}

export type ParsedResponse = RawResponse;

/** The HTTP/1.1 responses in the bytes of one connection (the campaign's parser: fuzz/send/raw.ts). */
export function parseResponses(text: string): ParsedResponse[] {
  return parseConnection(text).responses;
}
