// What bounds the connections a client can hold, beside the header and request timeouts
// (server.ts): a cap on open connections per process and per client address, closed as they
// arrive when over it (a client that opens thousands of sockets cannot starve the others);
// an idle keep-alive connection closed after keepAliveTimeout; and a connection on which
// nothing is read or written for idleTimeout closed. A client that stops reading its answer
// keeps writes waiting, which Node does not count as idle: that one is not bounded yet
// (docs/http.md).

import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  /** Open connections per process. */
  max: number;
  /** Open connections from one address per process. */
  maxPerAddress: number;
}

export type ConnectionRefusal = 'total' | 'per-address';

/** Applies the caps to `server`; `refused` counts each connection closed for one. */
export function limitConnections(server: Server, limits: ConnectionLimits, refused: (why: ConnectionRefusal) => void): void {
  server.maxConnections = limits.max;
  server.on('drop', () => refused('total'));
  const open = new Map<string, number>();
  // Before the HTTP server's own listener: a connection over the cap is gone before it is parsed.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const n = (open.get(address) ?? 0) + 1;
    if (n > limits.maxPerAddress) {
      refused('per-address');
      socket.destroy();
      return;
    }
    open.set(address, n);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}
