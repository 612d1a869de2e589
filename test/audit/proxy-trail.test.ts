// The real proxy process keeping its audit trail (--audit-dir): one AuditEvent per request it
// handled, allowed or refused, carrying the X-Request-Id the client got, the interaction, the
// patients the request named (a Patient read, a compartment, a search's Patient references, a
// created resource's subject), and the refusal's reason; all of it on disk once the proxy has
// stopped, and `fhirguard audit --patient` answering from it.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AuditEvent } from '../../src/audit/audit-event';
import { closeClients, send } from '../helpers/http-client';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { REPO_ROOT } from '../helpers/worker-process';
import { requestIdOf, trailEvents } from './trail-helpers';

let dir: string;
let upstream: RecordingUpstream;
let proxy: ProxyProcess;
const ids = new Map<string, string>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'fg-proxy-trail-'));
  upstream = await startRecordingUpstream({ name: 'trail' });
  proxy = await startProxy({
    dir,
    args: ['--audit-dir', path.join(dir, 'trail')],
    policy: {
      tiers: [{ name: 'all', upstreams: [upstream.url] }],
      rules: [{ resources: ['*'], interactions: ['read', 'search-type', 'create', 'capabilities'], tier: 'all' }],
    },
  });
  const requests: Array<[string, string, string, object?]> = [
    ['read', 'GET', '/fhir/Patient/p1'],
    ['compartment', 'GET', '/fhir/Patient/p2/Observation'],
    ['search', 'GET', '/fhir/Observation?subject=Patient/p3,Patient/p4&code=x'],
    ['create', 'POST', '/fhir/Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/p5' } }],
    ['refused', 'DELETE', '/fhir/Patient/p6'],
  ];
  for (const [name, method, target, body] of requests) {
    const res = await send(proxy.origin, method, target, body ? { body } : {});
    ids.set(name, String(res.headers['x-request-id']));
  }
  // Stopping flushes the trail: every answered request's event is on disk after it.
  expect(await proxy.stop()).toEqual({ code: 0, signal: null });
}, 120_000);

afterAll(async () => {
  closeClients();
  await stopAllProxies();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

function eventOf(name: string): AuditEvent {
  const matching = trailEvents(path.join(dir, 'trail')).filter((e) => requestIdOf(e) === ids.get(name));
  expect(matching).toHaveLength(1);
  return matching[0];
}

const patientsOf = (e: AuditEvent) => (e.entity ?? []).filter((x) => x.role?.code === '1').map((x) => x.what?.reference);

test('one AuditEvent per request, each with its request id', () => {
  expect(trailEvents(path.join(dir, 'trail')).map(requestIdOf).sort()).toEqual([...ids.values()].sort());
});

test.each([
  ['read', 'read', ['Patient/p1'], '0'],
  ['compartment', 'search-type', ['Patient/p2'], '0'],
  ['search', 'search-type', ['Patient/p3', 'Patient/p4'], '0'],
  ['create', 'create', ['Patient/p5'], '0'],
  ['refused', 'delete', ['Patient/p6'], '4'],
])('%s: the interaction, the patients it named and the outcome', (name, code, patients, outcome) => {
  const e = eventOf(name);
  expect(e.subtype?.map((c) => c.code)).toEqual([code]);
  expect(patientsOf(e).sort()).toEqual(patients);
  expect(e.outcome).toBe(outcome);
});

test('a refusal says why; the upstream never saw it', () => {
  expect(eventOf('refused').outcomeDesc).toMatch(/policy/);
  expect(upstream.traffic().map((r) => `${r.method} ${r.path}`)).not.toContain('DELETE /Patient/p6');
});

test('fhirguard audit answers who touched a patient', () => {
  const out = execFileSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'fhirguard'), 'audit', '--dir', path.join(dir, 'trail'), '--patient', 'Patient/p3', '--json'], { encoding: 'utf8' });
  const lines = out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines).toHaveLength(1);
  expect(JSON.stringify(lines[0])).toContain(ids.get('search'));
});
