// The authorization tests' OpenID Connect provider (test/helpers/oidc-provider.mjs, the real
// oidc-provider in a child process) and what a client does with it: client credentials, the
// code flow with PKCE over plain HTTP, introspection's revocation; plus what an attacker does
// with tokens: forge them (alg none, an HMAC keyed with the public key, another key) or sign
// well-formed ones with wrong claims using the provider's own key, with node:crypto only.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';

export const CLIENTS = {
  backend: { id: 'backend', secret: 'backend-secret' },
  opaque: { id: 'opaque-backend', secret: 'opaque-secret' },
  app: { id: 'app', redirect: 'http://127.0.0.1/callback' },
  fhirguard: { id: 'fhirguard', secret: 'fhirguard-secret' },
} as const;

export type Forged = 'alg-none' | 'hmac-public-pem' | 'hmac-public-jwk' | 'other-key' | 'other-key-real-kid';

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

export class OidcProvider {
  issuer = '';
  private child: ChildProcess | undefined;
  private readonly keyDir: string;

  private constructor(
    readonly audience: string,
    private readonly port: number,
  ) {
    this.keyDir = mkdtempSync(path.join(tmpdir(), 'fg-oidc-keys-'));
  }

  /** Starts the provider for `audience`, signing with the first of `keys` (key ids). */
  static async start(audience: string, keys: string[] = ['k1']): Promise<OidcProvider> {
    const p = new OidcProvider(audience, await freePort());
    await p.run(keys);
    return p;
  }

  /** Restarts it on the same address with another key list: a key rotation (the first key signs). */
  async rotate(keys: string[]): Promise<void> {
    await this.stopChild();
    await this.run(keys);
  }

  async stop(): Promise<void> {
    await this.stopChild();
    rmSync(this.keyDir, { recursive: true, force: true });
  }

  /** Stops it without forgetting its keys (the issuer is then down). */
  async stopChild(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  private async run(keys: string[]): Promise<void> {
    const env = { ...process.env, FG_OIDC: JSON.stringify({ port: this.port, audience: this.audience, keyDir: this.keyDir, keys }) };
    const child = spawn(process.execPath, ['--no-warnings', path.join(__dirname, 'oidc-provider.mjs')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    this.issuer = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve((JSON.parse(line) as { issuer: string }).issuer);
      });
      child.once('exit', (code) => reject(new Error(`the OpenID provider exited (${code}): ${err}`)));
    });
  }

  /** A signing key of the provider, private (as the provider has it). */
  privateKey(kid: string): KeyObject {
    return createPrivateKey({ key: JSON.parse(readFileSync(path.join(this.keyDir, `${kid}.json`), 'utf8')) as object, format: 'jwk' } as never);
  }

  private async token(form: Record<string, string>, auth?: string): Promise<Record<string, unknown>> {
    const res = await request(`${this.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: auth } : {}) },
      body: new URLSearchParams(form).toString(),
    });
    const json = (await res.body.json()) as Record<string, unknown>;
    if (res.statusCode !== 200) throw new Error(`token endpoint answered ${res.statusCode}: ${JSON.stringify(json)}`);
    return json;
  }

  /** An access token for a backend by client credentials. */
  async clientCredentials(scope: string, client: { id: string; secret: string } = CLIENTS.backend): Promise<string> {
    return String((await this.token({ grant_type: 'client_credentials', scope, resource: this.audience }, basic(client.id, client.secret))).access_token);
  }

  /**
   * The authorization code flow with PKCE, as a SMART app runs it, for `user` with the launch
   * patient `patient`: the access token and the token response's fields.
   */
  async codeFlow(scope: string, user: string, patient?: string): Promise<{ accessToken: string; response: Record<string, unknown> }> {
    const verifier = b64url(randomBytes(32));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const cookies = new Map<string, string>();
    const get = async (url: string): Promise<string> => {
      const res = await request(new URL(url, this.issuer).href, { headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      await res.body.dump();
      const set = res.headers['set-cookie'];
      for (const c of Array.isArray(set) ? set : set ? [set] : []) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      if (res.statusCode !== 302 && res.statusCode !== 303) throw new Error(`${url} answered ${res.statusCode}`);
      return String(res.headers.location);
    };
    const query = new URLSearchParams({
      client_id: CLIENTS.app.id,
      response_type: 'code',
      redirect_uri: CLIENTS.app.redirect,
      scope: `openid ${scope}`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: this.audience,
      login_hint: patient ? `${user}|${patient}` : user,
      state: 'fhirguard-test',
    });
    let location = await get(`/auth?${query.toString()}`);
    for (let hops = 0; !location.startsWith(CLIENTS.app.redirect); hops++) {
      if (hops > 5) throw new Error(`the code flow did not come back to the app: ${location}`);
      location = await get(location);
    }
    const code = new URL(location).searchParams.get('code');
    if (!code) throw new Error(`no code in ${location}`);
    const response = await this.token({ grant_type: 'authorization_code', code, redirect_uri: CLIENTS.app.redirect, client_id: CLIENTS.app.id, code_verifier: verifier, resource: this.audience });
    return { accessToken: String(response.access_token), response };
  }

  /** Revokes a token at the provider (introspection then says it is not active). */
  async revoke(token: string, client: { id: string; secret: string } = CLIENTS.opaque): Promise<void> {
    const res = await request(`${this.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client.id, client.secret) },
      body: new URLSearchParams({ token }).toString(),
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`revocation answered ${res.statusCode}`);
  }

  /** A well-signed JWT with `claims` over the defaults (issuer, audience, an hour of life), signed with key `kid`. */
  signed(kid: string, claims: Record<string, unknown> = {}): string {
    const now = Math.floor(Date.now() / 1000);
    const body = { iss: this.issuer, aud: this.audience, sub: 'forger', client_id: 'backend', scope: 'system/*.rs', iat: now, exp: now + 3600, ...claims };
    const input = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }))}.${b64url(JSON.stringify(body))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), this.privateKey(kid)))}`;
  }

  /** A token an attacker could make, with the claims of a good one. */
  forge(kind: Forged, kid = 'k1'): string {
    const now = Math.floor(Date.now() / 1000);
    const claims = b64url(JSON.stringify({ iss: this.issuer, aud: this.audience, sub: 'forger', client_id: 'backend', scope: 'system/*.rs', iat: now, exp: now + 3600 }));
    const publicKey = createPublicKey(this.privateKey(kid));
    switch (kind) {
      case 'alg-none':
        return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${claims}.`;
      case 'hmac-public-pem':
      case 'hmac-public-jwk': {
        const secret = kind === 'hmac-public-pem' ? publicKey.export({ type: 'spki', format: 'pem' }) : JSON.stringify(publicKey.export({ format: 'jwk' }));
        const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid }))}.${claims}`;
        return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`;
      }
      case 'other-key':
      case 'other-key-real-kid': {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        const input = `${b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: kind === 'other-key' ? 'not-a-key-of-the-issuer' : kid }))}.${claims}`;
        return `${input}.${b64url(sign('sha256', Buffer.from(input), privateKey))}`;
      }
    }
  }
}
