// Search validation through the real proxy, in front of a recording upstream: an unknown
// parameter is the client's error before it is a policy question, names a plain object
// inherits (`constructor`, `__proto__`...) are names like any other wherever a request can
// put one, `_type` is decided alike at every level, and lenient handling never touches the
// criteria of a conditional write. Generated with fast-check; every combination of the
// fixed lists runs first, as examples, then random ones.

import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send, type Reply, type SendOptions } from '../helpers/http-client';

let dir: string;
let proxy: ProxyProcess;
let up: RecordingUpstream;

/** Types the policy does not let anyone search or read; both are in the Patient compartment, Practitioner is not. */
const DENIED = ['AuditEvent', 'Practitioner'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-search-order-'));
  up = await startRecordingUpstream({ name: 'all-tiers' });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [
        { name: 'read', upstreams: [up.url] },
        { name: 'write', upstreams: [up.url] },
        { name: 'ops', upstreams: [up.url] },
      ],
      rules: [
        { resources: DENIED, interactions: ['read', 'search-type'], deny: true },
        { resources: ['*'], interactions: ['read', 'vread', 'search-type', 'history-instance', 'history-type'], tier: 'read' },
        { resources: ['*'], interactions: ['search-system', 'capabilities'], tier: 'read' },
        { resources: ['Patient', 'Observation'], interactions: ['create', 'update', 'patch', 'delete'], tier: 'write' },
        { resources: ['*'], interactions: ['batch', 'transaction'], tier: 'ops' },
        { resources: ['*'], interactions: ['operation'], operations: ['$validate'], tier: 'ops' },
      ],
    },
  });
}, 120_000);

afterAll(async () => {
  closeClients();
  if (proxy) expect(await proxy.stop()).toEqual({ code: 0, signal: null });
  await stopAllProxies();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

const LENIENT = { prefer: 'handling=lenient' };

interface Request {
  method: string;
  target: string;
  options?: SendOptions;
}

/** Sends one request with nothing else in flight and returns the reply and what the upstream saw. */
async function exchange(r: Request, extraHeaders: Record<string, string> = {}): Promise<{ reply: Reply; seen: RecordedRequest[] }> {
  up.clear();
  const reply = await send(proxy.origin, r.method, `/fhir${r.target}`, { ...r.options, headers: { ...r.options?.headers, ...extraHeaders } });
  return { reply, seen: up.traffic() };
}

/** A refusal as fhirguard gives it: the status, an OperationOutcome with a diagnostic, nothing forwarded. */
function refusalOf(reply: Reply, seen: RecordedRequest[]): { status: number; outcome: boolean; forwarded: number } {
  const issue = reply.json?.issue?.[0];
  return {
    status: reply.status,
    outcome: reply.json?.resourceType === 'OperationOutcome' && typeof issue?.diagnostics === 'string' && issue.diagnostics.length > 0,
    forwarded: seen.length,
  };
}

describe('an unknown parameter inside _include, _revinclude, a chain or _has is a client error first', () => {
  test.each([
    ['/Observation?_include=Observation:foo', /_include: unknown search parameter 'foo' for Observation/],
    ['/Observation?_include:iterate=Observation:foo', /_include: unknown search parameter 'foo' for Observation/],
    ['/Patient?_revinclude=Observation:foo', /_revinclude: unknown search parameter 'foo' for Observation/],
    ['/Observation?subject:Patient.foo=x', /chained parameter 'foo' is not defined for Patient/],
    ['/Patient?_has:Observation:foo:code=x', /'_has': unknown search parameter 'foo' for Observation/],
    ['/Patient?_has:Observation:subject:foo=x', /'_has': unknown search parameter 'foo' for Observation/],
  ])('%s: 400, and lenient handling drops it', async (target, diagnostics) => {
    const strict = await exchange({ method: 'GET', target });
    expect(refusalOf(strict.reply, strict.seen)).toEqual({ status: 400, outcome: true, forwarded: 0 });
    expect(strict.reply.json.issue[0]).toMatchObject({ code: 'not-supported', diagnostics: expect.stringMatching(diagnostics) });

    const lenient = await exchange({ method: 'GET', target: `${target}&_id=a1` }, LENIENT);
    expect(lenient.reply.status).toBe(200);
    expect(lenient.seen.map((r) => r.query)).toEqual(['_id=a1']);
  });

  test('lenient handling drops from the URL only: the same name in a _search form body is still decided on', async () => {
    const { reply, seen } = await exchange(
      {
        method: 'POST',
        target: '/Encounter/_search?_include=Encounter:foo',
        options: { body: '_include=Encounter:practitioner', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      },
      LENIENT,
    );
    expect(refusalOf(reply, seen)).toEqual({ status: 403, outcome: true, forwarded: 0 });
    expect(reply.json.issue[0].diagnostics).toMatch(/reaches Practitioner/);
  });

  test('a parameter that exists and reaches a type the policy denies is still a 403', async () => {
    const { reply, seen } = await exchange({ method: 'GET', target: '/Encounter?_include=Encounter:practitioner' });
    expect(refusalOf(reply, seen)).toEqual({ status: 403, outcome: true, forwarded: 0 });
    expect(reply.json.issue[0].diagnostics).toMatch(/reaches Practitioner, which the policy does not allow reading/);
  });
});

/** Every name a plain object inherits, and the two that reach prototypes by assignment. */
const INHERITED = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype'])];

const patchJson = { 'content-type': 'application/json-patch+json' };

/** Every place a request can carry a name that fhirguard looks up in a table. */
const PLACES: Record<string, (name: string) => Request> = {
  'search parameter': (n) => ({ method: 'GET', target: `/Encounter?${n}=x` }),
  'search parameter with :missing': (n) => ({ method: 'GET', target: `/Encounter?${n}:missing=true` }),
  'search parameter with :not': (n) => ({ method: 'GET', target: `/Encounter?${n}:not=x` }),
  'system search parameter': (n) => ({ method: 'GET', target: `/?_type=Patient&${n}=x` }),
  'form body parameter': (n) => ({ method: 'POST', target: '/Encounter/_search', options: { body: `${n}=x`, headers: { 'content-type': 'application/x-www-form-urlencoded' } } }),
  modifier: (n) => ({ method: 'GET', target: `/Observation?code:${n}=x` }),
  'reference modifier': (n) => ({ method: 'GET', target: `/Observation?subject:${n}=1` }),
  '_sort value': (n) => ({ method: 'GET', target: `/Encounter?_sort=${n}` }),
  '_include parameter': (n) => ({ method: 'GET', target: `/Observation?_include=Observation:${n}` }),
  '_include source type': (n) => ({ method: 'GET', target: `/Observation?_include=${n}:subject` }),
  '_include target type': (n) => ({ method: 'GET', target: `/Observation?_include=Observation:subject:${n}` }),
  '_revinclude parameter': (n) => ({ method: 'GET', target: `/Patient?_revinclude=Observation:${n}` }),
  'chain head': (n) => ({ method: 'GET', target: `/Observation?${n}.name=x` }),
  'chain link': (n) => ({ method: 'GET', target: `/Observation?subject:Patient.${n}=x` }),
  '_has type': (n) => ({ method: 'GET', target: `/Patient?_has:${n}:subject:code=x` }),
  '_has reference': (n) => ({ method: 'GET', target: `/Patient?_has:Observation:${n}:code=x` }),
  '_has parameter': (n) => ({ method: 'GET', target: `/Patient?_has:Observation:subject:${n}=x` }),
  '_type value': (n) => ({ method: 'GET', target: `/?_type=${n}` }),
  'history parameter': (n) => ({ method: 'GET', target: `/Patient/_history?${n}=x` }),
  'conditional update criterion': (n) => ({ method: 'PUT', target: `/Patient?${n}=x`, options: { body: { resourceType: 'Patient' } } }),
  'conditional delete criterion': (n) => ({ method: 'DELETE', target: `/Observation?${n}=x` }),
  'If-None-Exist criterion': (n) => ({ method: 'POST', target: '/Patient', options: { body: { resourceType: 'Patient' }, headers: { 'if-none-exist': `${n}=x` } } }),
  'resource type': (n) => ({ method: 'GET', target: `/${n}/1` }),
  'searched type': (n) => ({ method: 'GET', target: `/${n}?_id=1` }),
  'compartment owner': (n) => ({ method: 'GET', target: `/${n}/1/Observation` }),
  'compartment member': (n) => ({ method: 'GET', target: `/Patient/1/${n}` }),
  'compartment _type': (n) => ({ method: 'GET', target: `/Patient/1/*?_type=${n}` }),
  'system operation': (n) => ({ method: 'POST', target: `/$${n}`, options: { body: { resourceType: 'Parameters' } } }),
  'instance operation': (n) => ({ method: 'GET', target: `/Patient/1/$${n}` }),
  'element name in a body': (n) => ({ method: 'POST', target: '/Patient', options: { body: `{"resourceType":"Patient","${n}":"x"}` } }),
  'nested element name in a body': (n) => ({ method: 'POST', target: '/Patient', options: { body: `{"resourceType":"Patient","name":[{"${n}":"x"}]}` } }),
  'resourceType of a body': (n) => ({ method: 'POST', target: '/Patient', options: { body: { resourceType: n } } }),
  'contained resourceType': (n) => ({
    method: 'POST',
    target: '/Patient',
    options: { body: { resourceType: 'Patient', contained: [{ resourceType: n, id: 'c' }], managingOrganization: { reference: '#c' } } },
  }),
  'JSON Patch path': (n) => ({ method: 'PATCH', target: '/Patient/1', options: { body: [{ op: 'replace', path: `/${n}`, value: 'x' }], headers: patchJson } }),
  'FHIRPath Patch type': (n) => ({
    method: 'PATCH',
    target: '/Patient/1',
    options: {
      body: {
        resourceType: 'Parameters',
        parameter: [
          {
            name: 'operation',
            part: [
              { name: 'type', valueCode: n },
              { name: 'path', valueString: 'Patient.active' },
            ],
          },
        ],
      },
    },
  }),
  'bundle entry method': (n) => ({ method: 'POST', target: '/', options: { body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: n, url: 'Patient/1' } }] } } }),
  'bundle entry type': (n) => ({ method: 'POST', target: '/', options: { body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `${n}/1` } }] } } }),
  'bundle entry search parameter': (n) => ({
    method: 'POST',
    target: '/',
    options: { body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Patient?${n}=x` } }] } },
  }),
  'Accept value': (n) => ({ method: 'GET', target: '/Patient/1', options: { headers: { accept: n } } }),
  '_format value': (n) => ({ method: 'GET', target: `/Patient/1?_format=${n}` }),
  'Content-Type value': (n) => ({ method: 'POST', target: '/Patient', options: { body: { resourceType: 'Patient' }, headers: { 'content-type': `application/${n}` } } }),
};

describe('names Object.prototype has, wherever a request can carry a name', () => {
  const combos = INHERITED.flatMap((name) => Object.keys(PLACES).flatMap((place) => [false, true].map((lenient) => [name, place, lenient] as [string, string, boolean])));

  test('are refused with a 4xx OperationOutcome and never forwarded; lenient handling may only drop them', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...INHERITED), fc.constantFrom(...Object.keys(PLACES)), fc.boolean(), async (name, place, lenient) => {
        const { reply, seen } = await exchange(PLACES[place](name), lenient ? LENIENT : {});
        if (lenient && reply.status === 200) {
          // Dropped as unknown: whatever reached the upstream does not carry the name.
          expect({ name, place, forwarded: seen.map((r) => r.url).filter((u) => u.includes(name)) }).toEqual({ name, place, forwarded: [] });
          return;
        }
        const got = refusalOf(reply, seen);
        expect({ name, place, lenient, ...got, status: got.status >= 400 && got.status < 500 ? '4xx' : got.status }).toEqual({
          name,
          place,
          lenient,
          status: '4xx',
          outcome: true,
          forwarded: 0,
        });
      }),
      { examples: combos, numRuns: combos.length + 50 },
    );
  }, 180_000);
});

describe('_type and every other reach-widening parameter are decided alike at every level', () => {
  /** Patient compartment members the policy allows, one it denies, and types outside the compartment. */
  const TYPES = ['Observation', 'Condition', 'Encounter', 'AuditEvent', 'Practitioner', 'Medication'];
  const PATIENT_COMPARTMENT = new Set(['Observation', 'Condition', 'Encounter', 'AuditEvent']);
  const LEVELS: Record<string, { path: string; compartment: boolean }> = {
    type: { path: '/Observation', compartment: false },
    system: { path: '/', compartment: false },
    'compartment type': { path: '/Patient/1/Observation', compartment: true },
    'compartment *': { path: '/Patient/1/*', compartment: true },
  };

  test('a type outside the compartment is a 400, a denied type a 403, at every level alike; lenient changes nothing', async () => {
    const examples: [string, string[], boolean][] = [];
    for (const level of Object.keys(LEVELS)) for (const t of TYPES) for (const lenient of [false, true]) examples.push([level, [t], lenient]);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(LEVELS)), fc.subarray(TYPES, { minLength: 1 }), fc.boolean(), async (level, types, lenient) => {
        const { path, compartment } = LEVELS[level];
        const query = `_type=${types.join(',')}`;
        const { reply, seen } = await exchange({ method: 'GET', target: `${path}?${query}` }, lenient ? LENIENT : {});
        const expected = compartment && types.some((t) => !PATIENT_COMPARTMENT.has(t)) ? 400 : types.some((t) => DENIED.includes(t)) ? 403 : 200;
        if (expected === 200) {
          expect({ level, types, status: reply.status, forwarded: seen.map((r) => r.query) }).toEqual({ level, types, status: 200, forwarded: [query] });
        } else {
          expect({ level, types, ...refusalOf(reply, seen) }).toEqual({ level, types, status: expected, outcome: true, forwarded: 0 });
        }
      }),
      { examples, numRuns: examples.length + 60 },
    );
  }, 180_000);

  test('every other reach-widening parameter too: the same verdict for a Patient search at each level', async () => {
    const PATIENT_AT: Record<string, string> = {
      type: '/Patient?',
      system: '/?_type=Patient&',
      'compartment type': '/Patient/1/Patient?',
      'compartment *': '/Patient/1/*?_type=Patient&',
    };
    /** Parameter → the type it reaches that the policy denies, or null when all it reaches may be read. */
    const WIDENING: Record<string, string | null> = {
      '_revinclude=AuditEvent:patient': 'AuditEvent',
      '_has:AuditEvent:patient:type=x': 'AuditEvent',
      '_include=Patient:general-practitioner': 'Practitioner',
      'general-practitioner:Practitioner.name=x': 'Practitioner',
      '_include=Patient:organization': null,
      '_revinclude=Observation:subject': null,
      '_has:Observation:subject:code=x': null,
      'organization.name=x': null,
      '_list=42': null,
    };
    const examples: [string, string, boolean][] = [];
    for (const level of Object.keys(PATIENT_AT)) for (const param of Object.keys(WIDENING)) examples.push([level, param, false]);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(PATIENT_AT)), fc.constantFrom(...Object.keys(WIDENING)), fc.boolean(), async (level, param, lenient) => {
        const { reply, seen } = await exchange({ method: 'GET', target: `${PATIENT_AT[level]}${param}` }, lenient ? LENIENT : {});
        const denied = WIDENING[param];
        if (denied === null) {
          expect({ level, param, status: reply.status, forwarded: seen.length }).toEqual({ level, param, status: 200, forwarded: 1 });
        } else {
          expect({ level, param, ...refusalOf(reply, seen) }).toEqual({ level, param, status: 403, outcome: true, forwarded: 0 });
          expect(reply.json.issue[0].diagnostics).toContain(`reaches ${denied}`);
        }
      }),
      { examples, numRuns: examples.length + 30 },
    );
  }, 180_000);

  test('GET Patient/1/Observation?_type=AuditEvent is refused like Observation?_type=AuditEvent', async () => {
    for (const target of ['/Observation?_type=AuditEvent', '/Patient/1/Observation?_type=AuditEvent', '/Patient/1/*?_type=AuditEvent', '/?_type=AuditEvent']) {
      const { reply, seen } = await exchange({ method: 'GET', target });
      expect({ target, ...refusalOf(reply, seen) }).toEqual({ target, status: 403, outcome: true, forwarded: 0 });
    }
  });

  test('a compartment search for a type outside the compartment is a client error', async () => {
    for (const target of ['/Patient/1/Medication', '/Patient/1/Practitioner', '/Device/1/Device']) {
      const { reply, seen } = await exchange({ method: 'GET', target });
      expect({ target, ...refusalOf(reply, seen) }).toEqual({ target, status: 404, outcome: true, forwarded: 0 });
      expect(reply.json.issue[0].diagnostics).toMatch(/is not in the (Patient|Device) compartment/);
    }
  });
});

describe('lenient handling never changes the criteria of a conditional write', () => {
  const KNOWN = ['code=x', 'status=final', '_id=a1', 'subject=Patient/1'];
  const UNKNOWN = ['general-practitioner=1', 'shoe-size=42', 'constructor=x', 'subject.foo=x', '_has:Observation:foo:code=x'];
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
  const WRITES: Record<string, (query: string) => Request> = {
    'conditional update': (q) => ({ method: 'PUT', target: `/Observation?${q}`, options: { body: observation } }),
    'conditional patch': (q) => ({ method: 'PATCH', target: `/Observation?${q}`, options: { body: [{ op: 'replace', path: '/status', value: 'final' }], headers: patchJson } }),
    'conditional delete': (q) => ({ method: 'DELETE', target: `/Observation?${q}` }),
    'conditional create': (q) => ({ method: 'POST', target: '/Observation', options: { body: observation, headers: { 'if-none-exist': q } } }),
  };

  test('an unknown criterion is a 400 with or without lenient; known criteria reach the write tier exactly as sent', async () => {
    const examples: [string, string[], boolean][] = [];
    for (const kind of Object.keys(WRITES)) {
      for (const lenient of [false, true]) {
        examples.push([kind, ['general-practitioner=1'], lenient], [kind, ['code=x', 'general-practitioner=1'], lenient], [kind, ['code=x'], lenient]);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(WRITES)), fc.shuffledSubarray([...KNOWN, ...UNKNOWN], { minLength: 1 }), fc.boolean(), async (kind, criteria, lenient) => {
        const query = criteria.join('&');
        const { reply, seen } = await exchange(WRITES[kind](query), lenient ? LENIENT : {});
        if (criteria.some((c) => UNKNOWN.includes(c))) {
          expect({ kind, query, ...refusalOf(reply, seen) }).toEqual({ kind, query, status: 400, outcome: true, forwarded: 0 });
          return;
        }
        expect({ kind, query, status: reply.status < 300 ? 'ok' : reply.json }).toEqual({ kind, query, status: 'ok' });
        const forwarded = seen.map((r) => (kind === 'conditional create' ? r.headers['if-none-exist'] : r.query));
        expect({ kind, forwarded }).toEqual({ kind, forwarded: [query] });
      }),
      { examples, numRuns: examples.length + 60 },
    );
  }, 180_000);
});
