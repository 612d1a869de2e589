// A worker is healthy when GET /metadata (an operator's server: its `health` path) on its
// Unix socket answers 200.

import http from 'node:http';

export const DEFAULT_HEALTH_PATH = '/metadata';

export function checkHealth(socketPath: string, timeoutMs = 2000, healthPath = DEFAULT_HEALTH_PATH): Promise<boolean> {
  return new Promise((resolve) => {
    // A connection of its own each time (agent: false), closed after the answer: an idle
    // keep-alive socket of the agent's would hold a draining worker open for nothing.
    const req = http.request({ socketPath, path: healthPath, method: 'GET', timeout: timeoutMs, agent: false, headers: { accept: 'application/fhir+json' } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200));
      res.once('error', () => resolve(false));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** Polls until healthy (true), or until `gone` settles or the deadline passes (false). */
export async function waitHealthy(socketPath: string, gone: Promise<unknown>, timeoutMs: number, healthPath = DEFAULT_HEALTH_PATH): Promise<boolean> {
  let exited = false;
  void gone.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  while (!exited && Date.now() < deadline) {
    if (await checkHealth(socketPath, 2000, healthPath)) return true;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 250);
  }
  return false;
}
