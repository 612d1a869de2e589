// The baseline proxy: Fastify with @fastify/http-proxy and nothing else (no FHIR logic; only the
// hold on V8's tick-object map fhirguard has too), serving <upstream> under /fhir. Runs as its own process:
//   node dist/bench/lib/bare.js <http://host:port | unix:/path>
// and prints {"port": N} once it listens on 127.0.0.1.

import type net from 'node:net';
import querystring from 'node:querystring';
import { holdTickObjectShape } from '../../src/proxy/tick-shape';

export const BARE_SCRIPT = __filename;

/** @fastify/reply-from's spelling of an upstream: unix sockets as unix+http://<escaped path>. */
export function replyFromUpstream(upstream: string): string {
  return upstream.startsWith('unix:') ? `unix+http://${querystring.escape(upstream.slice('unix:'.length))}` : upstream;
}

async function runBare(upstream: string): Promise<void> {
  // The same hold on V8's tick-object map as fhirguard's proxy (src/proxy/tick-shape.ts):
  // without it bare falls at random into a state ~10% slower, which would flatter fhirguard.
  holdTickObjectShape();
  const Fastify = (await import('fastify')).default;
  const httpProxy = (await import('@fastify/http-proxy')).default;
  // Bodies up to a Synthea transaction's size pass (Fastify's default limit is 1 MiB).
  const app = Fastify({ logger: false, bodyLimit: 64 * 2 ** 20 });
  await app.register(httpProxy, { upstream: replyFromUpstream(upstream), prefix: '/fhir' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(JSON.stringify({ port: (app.server.address() as net.AddressInfo).port }) + '\n');
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

if (require.main === module) {
  runBare(process.argv[2]).catch((err) => {
    process.stderr.write(`bare proxy: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
