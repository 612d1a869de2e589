// A token issuer for benchmarks: OpenID discovery and a JWKS on loopback, and JWT access
// tokens signed with its key. The front door fetches the keys once and then verifies each
// token once; what a benchmark measures after that is a token remembered (the cost a client
// sending the same token on every request pays).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export interface BenchIssuer {
  issuer: string;
  /** A JWT with these claims (scope, patient...), valid for an hour. */
  mint(audience: string, claims: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') return void res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` }));
    if (req.url === '/jwks') return void res.end(JSON.stringify({ keys: [jwk] }));
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    mint: (audience, claims) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'bench' }).setIssuer(issuer).setAudience(audience).setSubject('bench').setIssuedAt().setExpirationTime('1h').sign(privateKey),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
