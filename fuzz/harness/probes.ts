// Liveness and service checks on a running proxy: the process is alive and its admin
// /healthz answers; each tier still serves a plain request (a create on the write tier, a
// read on the read tier, a $validate on the ops tier), each on a fresh connection so no
// queue in the campaign's own pool can hide a wedged tier.

import { request } from 'undici';
import type { ProxyProcess } from './proxy-process';

export interface ProbeFailure {
  oracle: string;
  detail: string;
}

async function call(url: string, method: string, timeoutMs: number, body?: string): Promise<{ status: number; text: string } | string> {
  try {
    const res = await request(url, {
      method: method as 'GET',
      body,
      headers: body ? { 'content-type': 'application/fhir+json' } : {},
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      reset: true,
    });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (e) {
    return `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.trim();
  }
}

export async function checkAlive(proxy: ProxyProcess, timeoutMs: number): Promise<ProbeFailure | undefined> {
  const exit = proxy.exit();
  if (exit) return { oracle: 'proxy-alive', detail: `the proxy exited (${exit.code ?? exit.signal}); stderr: ${proxy.stderr().slice(-2000)}` };
  const r = await call(`${proxy.adminUrl}/healthz`, 'GET', timeoutMs);
  if (typeof r === 'string' || r.status !== 200) return { oracle: 'proxy-alive', detail: `admin /healthz: ${typeof r === 'string' ? r : `${r.status} ${r.text.slice(0, 200)}`}` };
  return undefined;
}

const PATIENT = JSON.stringify({ resourceType: 'Patient', active: true, name: [{ family: 'Probe' }] });

export async function checkTiers(proxy: ProxyProcess, timeoutMs: number): Promise<ProbeFailure[]> {
  const base = `${proxy.origin}/fhir`;
  const probes: [string, string, string, string | undefined, number][] = [
    ['write', 'POST', `${base}/Patient`, PATIENT, 201],
    ['read', 'GET', `${base}/Patient/1`, undefined, 200],
    ['ops', 'POST', `${base}/Patient/$validate`, PATIENT, 200],
  ];
  const results = await Promise.all(probes.map(([, method, url, body]) => call(url, method, timeoutMs, body)));
  return results.flatMap((r, i) => {
    const [tier, method, url, , want] = probes[i];
    if (typeof r !== 'string' && r.status === want) return [];
    return [{ oracle: 'tier-serves', detail: `${tier} tier: ${method} ${url.slice(base.length)} → ${typeof r === 'string' ? r : `${r.status} ${r.text.slice(0, 200)}`} (want ${want})` }];
  });
}
