// A policy reload, asked and answered: what the front door's admin listener (POST /reload)
// and the agent's control socket (POST /policy/reload) answer, and the one way fhirguard asks
// either of them (`fhirguard reload`, `up` on SIGHUP, the agent asking the front door it runs).

import http from 'node:http';

/** The policy in force after a reload, or why the new one was refused (the old one stays). */
export type ReloadAnswer = { result: 'applied' | 'unchanged'; policy: { file: string; digest: string } } | { result: 'refused'; error: string; policy: { file: string; digest: string } };

/** Where a reload is asked: a TCP admin listener, or a Unix socket (the agent's control socket). */
export type ReloadTarget = { host: string; port: number } | { socketPath: string };

/** POSTs `path` and reads the answer: 200 (applied, unchanged) and 422 (refused) carry a ReloadAnswer. */
export function askReload(target: ReloadTarget, path: string, timeoutMs = 120_000): Promise<ReloadAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path, method: 'POST', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.once('end', () => {
        if (res.statusCode !== 200 && res.statusCode !== 422) return reject(new Error(`HTTP ${res.statusCode}: ${body.trim()}`));
        try {
          resolve(JSON.parse(body) as ReloadAnswer);
        } catch {
          reject(new Error(`an answer that is not JSON: ${body.slice(0, 200)}`));
        }
      });
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}
