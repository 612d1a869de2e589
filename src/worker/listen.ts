// Where a worker listens: `unix:/abs/path.sock` (what `fhirguard up` uses: the socket lives
// in a directory bind-mounted into the worker's container) or `host:port` (port 0 = any
// free port, reported in the ready log line).

import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';

export type ListenAddress = { socketPath: string } | { host: string; port: number };

export function parseListen(text: string): ListenAddress {
  if (text.startsWith('unix:')) {
    const socketPath = text.slice('unix:'.length);
    if (!socketPath.startsWith('/')) throw new Error(`--listen ${text}: a Unix socket path must be absolute`);
    return { socketPath };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m || Number(m[3]) > 65535) throw new Error(`--listen ${text} is neither unix:/path nor host:port`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/**
 * A socket file left by a worker that was killed: removed, since a new bind would fail on
 * it. Anything else at that path is left alone and the start fails.
 */
function removeStaleSocket(path: string): void {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; not removing it`);
  unlinkSync(path);
}

/** Listens; resolves with the address as text (`unix:/p` or `host:port`). */
export function listen(server: Server, address: ListenAddress): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      if ('socketPath' in address) {
        // Group access: the proxy runs as another user in the worker's group.
        chmodSync(address.socketPath, 0o660);
        resolve(`unix:${address.socketPath}`);
      } else {
        const a = server.address();
        const port = a && typeof a === 'object' ? a.port : address.port;
        resolve(address.host.includes(':') ? `[${address.host}]:${port}` : `${address.host}:${port}`);
      }
    };
    if ('socketPath' in address) {
      removeStaleSocket(address.socketPath);
      server.listen(address.socketPath, done);
    } else {
      server.listen(address.port, address.host, done);
    }
  });
}
