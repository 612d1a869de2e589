// undici builds its HTTP/1 parser (a WebAssembly module it reads from a file) at its first
// connection. Under the front door's serve phase, a file lookup that late is a violation: the
// proxy would be killed the first time a worker joins after it started serving (an
// operator's server takes longer to start than the proxy). One request to a throwaway server
// on an abstract Unix socket (no file, no network) at start builds it while still in boot.

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Client } from 'undici';

export async function warmHttpClient(): Promise<void> {
  const name = `\0fhirguard-warm-up-${process.pid}-${randomBytes(6).toString('hex')}`;
  const server = net.createServer((c) => {
    c.once('data', () => c.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'));
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: name }, resolve);
  });
  const client = new Client('http://localhost', { socketPath: name });
  try {
    const res = await client.request({ path: '/', method: 'GET' });
    await res.body.dump();
  } finally {
    await client.close().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
