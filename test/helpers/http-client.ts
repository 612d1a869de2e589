// The FHIR client of the proxy tests: plain node:http, because a proxy test must be able to
// send what well-behaved clients never do (hop-by-hop headers, odd methods, raw bytes,
// malformed URLs) and see the exact status, headers and body bytes that came back.

import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

export interface SendOptions {
  headers?: Record<string, string | string[]>;
  /** Objects are sent as application/fhir+json unless headers say otherwise. */
  body?: Buffer | string | object;
  /** A fresh connection instead of the shared keep-alive agent. */
  fresh?: boolean;
  /** Header names not to send even where send() would add them (accept, content-type). */
  omit?: string[];
}

/** One request to `origin` (http://host:port) with the raw `target` (path + query). */
export function send(origin: string, method: string, target: string, o: SendOptions = {}): Promise<Reply> {
  const url = new URL(origin);
  const headers: Record<string, string | string[]> = { accept: 'application/fhir+json', ...o.headers };
  let payload: Buffer | undefined;
  if (o.body !== undefined) {
    payload = Buffer.isBuffer(o.body) ? o.body : Buffer.from(typeof o.body === 'string' ? o.body : JSON.stringify(o.body));
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/fhir+json';
    headers['content-length'] = String(payload.length);
  }
  for (const name of o.omit ?? []) delete headers[name];
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: target, headers, agent: o.fresh ? false : agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Closes the shared keep-alive connections (afterAll). */
export function closeClients(): void {
  agent.destroy();
}
