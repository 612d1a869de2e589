// Every kind of request fhirguard must refuse, sent to the real proxy process: each gets a
// FHIR OperationOutcome with the right status, issue code and a diagnostic naming the
// problem, and the recording upstream behind every tier never sees it. The proxy runs with
// a small --body-limit and --max-depth so those limits are reachable in a test.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send, type Reply } from '../helpers/http-client';
import type { Json } from '../helpers/json';
import { poll } from '../helpers/poll';

const BODY_LIMIT = 8192;
/** A header value meaning: do not send this header at all. */
const NO_HEADER = '\u0000omit';
const MAX_DEPTH = 12;
/** Types the policy lets clients read; Practitioner is deliberately not among them. */
const READABLE = ['Patient', 'Observation', 'Encounter', 'Organization', 'Condition'];

let dir: string;
let proxy: ProxyProcess;
let up: RecordingUpstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-refuse-'));
  up = await startRecordingUpstream({ name: 'all-tiers' });
  proxy = await startProxy({
    dir,
    args: ['--body-limit', String(BODY_LIMIT), '--max-depth', String(MAX_DEPTH)],
    policy: {
      tiers: [
        { name: 'read', upstreams: [up.url] },
        { name: 'write', upstreams: [up.url] },
        { name: 'ops', upstreams: [up.url] },
      ],
      rules: [
        { resources: READABLE, interactions: ['read', 'vread', 'search-type', 'history-instance', 'history-type'], tier: 'read' },
        { resources: ['*'], interactions: ['capabilities'], tier: 'read' },
        { resources: ['Patient', 'Observation', 'Encounter'], interactions: ['create', 'update', 'patch'], tier: 'write' },
        { resources: ['*'], interactions: ['batch', 'transaction'], tier: 'ops' },
        { resources: ['*'], interactions: ['operation'], operations: ['$validate'], tier: 'ops' },
        { resources: ['*'], interactions: ['delete'], deny: true },
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

const patient = { resourceType: 'Patient', name: [{ family: 'Chalmers', given: ['Peter'] }], gender: 'male', birthDate: '1974-12-25' };

interface Refusal {
  name: string;
  method: string;
  /** The raw request target, base included. */
  target: string;
  body?: Buffer | string | object;
  headers?: Record<string, string>;
  status: number;
  code: string;
  diagnostics: RegExp;
  /** Every issue's expression, joined, must match. */
  expression?: RegExp;
  allow?: RegExp;
}

function nested(depth: number): Json {
  // Patient.extension.extension... each level an object inside an array: 2 levels per step.
  let ext: Json = { url: 'http://example.org/leaf', valueString: 'x' };
  for (let i = 0; i < depth; i++) ext = { url: `http://example.org/level-${i}`, extension: [ext] };
  return { resourceType: 'Patient', extension: [ext] };
}

const REFUSALS: Refusal[] = [
  // Paths that could mean something else to the upstream.
  { name: 'traversal with an encoded slash', method: 'GET', target: '/fhir/Patient/..%2FObservation', status: 400, code: 'invalid', diagnostics: /\.\.|slash|segment/i },
  { name: 'traversal with encoded dots', method: 'GET', target: '/fhir/Patient/%2e%2e/x', status: 400, code: 'invalid', diagnostics: /\.\.|dot|segment/i },
  { name: 'plain dot segments', method: 'GET', target: '/fhir/Patient/../Observation/1', status: 400, code: 'invalid', diagnostics: /\.\.|dot|segment/i },
  { name: 'an encoded slash in an id', method: 'GET', target: '/fhir/Patient/a%2Fb', status: 400, code: 'invalid', diagnostics: /slash|%2F/i },
  { name: 'an encoded backslash', method: 'GET', target: '/fhir/Patient/a%5Cb', status: 400, code: 'invalid', diagnostics: /backslash|%5C/i },
  { name: 'a double slash', method: 'GET', target: '/fhir/Patient//1', status: 400, code: 'invalid', diagnostics: /empty segment|double|\/\//i },
  { name: 'an id over 64 characters', method: 'GET', target: `/fhir/Patient/${'a'.repeat(65)}`, status: 400, code: 'invalid', diagnostics: /is not a FHIR id/ },
  { name: 'a version id over 64 characters', method: 'GET', target: `/fhir/Patient/1/_history/${'9'.repeat(65)}`, status: 400, code: 'invalid', diagnostics: /version id .* is not a FHIR id/ },
  { name: 'an id with characters outside the id alphabet', method: 'GET', target: '/fhir/Patient/abc_def', status: 400, code: 'invalid', diagnostics: /is not a FHIR id/ },
  { name: 'bad percent-encoding in the path', method: 'GET', target: '/fhir/Patient/%zz', status: 400, code: 'invalid', diagnostics: /percent|%/i },
  // Query strings.
  { name: 'bad percent-encoding in the query', method: 'GET', target: '/fhir/Patient?family=%zz', status: 400, code: 'invalid', diagnostics: /'%' must be followed by two hex digits/ },
  { name: 'a truncated escape at the end of the query', method: 'GET', target: '/fhir/Patient?family=abc%4', status: 400, code: 'invalid', diagnostics: /two hex digits/ },
  { name: 'percent-encoded bytes that are not UTF-8', method: 'GET', target: '/fhir/Patient?family=%C3%28', status: 400, code: 'invalid', diagnostics: /not valid UTF-8/ },
  { name: 'NUL in the query', method: 'GET', target: '/fhir/Patient?family=a%00b', status: 400, code: 'invalid', diagnostics: /NUL/ },
  { name: 'an empty parameter name', method: 'GET', target: '/fhir/Patient?=Chalmers', status: 400, code: 'invalid', diagnostics: /empty name/ },
  { name: 'an empty modifier', method: 'GET', target: '/fhir/Patient?family:=Chalmers', status: 400, code: 'invalid', diagnostics: /empty modifier/ },
  // Types, paths and methods.
  { name: 'an unknown resource type', method: 'GET', target: '/fhir/Patientt/1', status: 404, code: 'not-supported', diagnostics: /'Patientt' is not an R4 resource type/ },
  { name: 'an unknown resource type in a search', method: 'GET', target: '/fhir/Medicament?name=x', status: 404, code: 'not-supported', diagnostics: /'Medicament' is not an R4 resource type/ },
  { name: 'an unknown path under the base', method: 'GET', target: '/fhir/Patient/1/_history/2/extra/more', status: 404, code: 'not-found', diagnostics: /not a FHIR RESTful interaction path/ },
  { name: 'an unknown path outside the base', method: 'GET', target: '/admin/secrets', status: 404, code: 'not-found', diagnostics: /no FHIR endpoint at \/admin\/secrets.*'\/fhir'/ },
  { name: 'the base spelled with an escape', method: 'GET', target: '/%66hir/Patient/1', status: 400, code: 'invalid', diagnostics: /must start with the FHIR base '\/fhir'/ },
  { name: 'a path longer than any FHIR path', method: 'GET', target: `/fhir/Patient/${'a'.repeat(3000)}`, status: 400, code: 'invalid', diagnostics: /longer than 1024 characters/ },
  { name: 'OPTIONS', method: 'OPTIONS', target: '/fhir/Patient/1', status: 405, code: 'not-supported', diagnostics: /OPTIONS is not allowed/, allow: /GET/ },
  { name: 'TRACE', method: 'TRACE', target: '/fhir/Patient', status: 405, code: 'not-supported', diagnostics: /TRACE/, allow: /GET/ },
  { name: 'PROPFIND (not routed at all)', method: 'PROPFIND', target: '/fhir/Patient', status: 405, code: 'not-supported', diagnostics: /PROPFIND is not a FHIR RESTful method/, allow: /GET/ },
  { name: 'POST on a resource id', method: 'POST', target: '/fhir/Patient/1', body: patient, status: 405, code: 'not-supported', diagnostics: /POST is not allowed on Patient\/\[id\]/, allow: /PUT/ },
  { name: 'GET on _search', method: 'GET', target: '/fhir/Patient/_search?family=x', status: 405, code: 'not-supported', diagnostics: /GET is not allowed on Patient\/_search/, allow: /POST/ },
  // Bodies.
  {
    name: 'a body over --body-limit',
    method: 'POST',
    target: '/fhir/Patient',
    body: { ...patient, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(BODY_LIMIT)}</div>` } },
    status: 413,
    code: 'too-long',
    diagnostics: /larger than the configured limit/,
  },
  {
    name: 'text/plain content',
    method: 'POST',
    target: '/fhir/Patient',
    body: JSON.stringify(patient),
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'not-supported',
    diagnostics: /text\/plain/,
  },
  {
    name: 'XML content',
    method: 'POST',
    target: '/fhir/Patient',
    body: '<Patient xmlns="http://hl7.org/fhir"/>',
    headers: { 'content-type': 'application/fhir+xml' },
    status: 415,
    code: 'not-supported',
    diagnostics: /application\/fhir\+xml/,
  },
  {
    name: 'a charset other than UTF-8',
    method: 'POST',
    target: '/fhir/Patient',
    body: patient,
    headers: { 'content-type': 'application/fhir+json; charset=iso-8859-1' },
    status: 415,
    code: 'not-supported',
    diagnostics: /charset/,
  },
  {
    name: 'another FHIR version',
    method: 'POST',
    target: '/fhir/Patient',
    body: patient,
    headers: { 'content-type': 'application/fhir+json; fhirVersion=3.0' },
    status: 415,
    code: 'not-supported',
    diagnostics: /fhirVersion/,
  },
  {
    name: 'a resource with an empty Content-Type',
    method: 'PUT',
    target: '/fhir/Patient/1',
    body: { ...patient, id: '1' },
    headers: { 'content-type': '' },
    status: 415,
    code: 'not-supported',
    diagnostics: /Content-Type/,
  },
  {
    name: 'a resource without a Content-Type',
    method: 'PUT',
    target: '/fhir/Patient/1',
    body: { ...patient, id: '1' },
    headers: { 'content-type': NO_HEADER },
    status: 415,
    code: 'not-supported',
    diagnostics: /Content-Type/,
  },
  {
    name: 'a form body to a create',
    method: 'POST',
    target: '/fhir/Patient',
    body: 'family=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'not-supported',
    diagnostics: /x-www-form-urlencoded/,
  },
  {
    name: 'Accept XML only',
    method: 'GET',
    target: '/fhir/Patient/1',
    headers: { accept: 'application/fhir+xml' },
    status: 406,
    code: 'not-supported',
    diagnostics: /Accept 'application\/fhir\+xml'/,
  },
  { name: '_format=xml', method: 'GET', target: '/fhir/Patient/1?_format=xml', status: 406, code: 'not-supported', diagnostics: /_format 'xml'/ },
  {
    name: 'Accept another FHIR version',
    method: 'GET',
    target: '/fhir/Patient/1',
    headers: { accept: 'application/fhir+json; fhirVersion=3.0' },
    status: 406,
    code: 'not-supported',
    diagnostics: /Accept/,
  },
  {
    name: 'a JSON array as a resource',
    method: 'POST',
    target: '/fhir/Patient',
    body: '[{"resourceType":"Patient"}]',
    status: 400,
    code: 'structure',
    diagnostics: /must be a JSON object .* not an array/,
  },
  { name: 'a JSON string as a resource', method: 'POST', target: '/fhir/Patient', body: '"Patient"', status: 400, code: 'structure', diagnostics: /must be a JSON object .* not string/ },
  { name: 'JSON null as a resource', method: 'POST', target: '/fhir/Patient', body: 'null', status: 400, code: 'structure', diagnostics: /must be a JSON object .* not null/ },
  { name: 'broken JSON', method: 'POST', target: '/fhir/Patient', body: '{"resourceType":"Patient",', status: 400, code: 'structure', diagnostics: /not valid JSON/ },
  {
    name: 'an empty body on create',
    method: 'POST',
    target: '/fhir/Patient',
    body: '',
    headers: { 'content-type': 'application/fhir+json' },
    status: 400,
    code: 'required',
    diagnostics: /create needs a JSON resource body/,
  },
  {
    name: `nesting deeper than --max-depth ${MAX_DEPTH}`,
    method: 'POST',
    target: '/fhir/Patient',
    body: nested(MAX_DEPTH),
    status: 400,
    code: 'structure',
    diagnostics: new RegExp(`nests deeper than ${MAX_DEPTH} levels`),
  },
  {
    name: 'a __proto__ key',
    method: 'POST',
    target: '/fhir/Patient',
    body: '{"resourceType":"Patient","__proto__":{"active":true}}',
    status: 400,
    code: 'security',
    diagnostics: /'__proto__' is not allowed/,
  },
  {
    name: 'a constructor key deep inside',
    method: 'POST',
    target: '/fhir/Patient',
    body: '{"resourceType":"Patient","name":[{"family":"x","constructor":{"prototype":{"polluted":true}}}]}',
    status: 400,
    code: 'security',
    diagnostics: /'constructor' is not allowed/,
  },
  {
    name: 'invalid UTF-8 in a body',
    method: 'POST',
    target: '/fhir/Patient',
    body: Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"family":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')]),
    status: 400,
    code: 'structure',
    diagnostics: /not valid UTF-8/,
  },
  {
    name: 'invalid UTF-8 in a _search form',
    method: 'POST',
    target: '/fhir/Patient/_search',
    body: Buffer.from([0x66, 0x61, 0x6d, 0x69, 0x6c, 0x79, 0x3d, 0xff]),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 400,
    code: 'invalid',
    diagnostics: /not valid UTF-8/,
  },
  // Policy.
  { name: 'a delete the policy denies', method: 'DELETE', target: '/fhir/Patient/1', status: 403, code: 'forbidden', diagnostics: /delete/ },
  { name: 'reading a type the policy does not allow', method: 'GET', target: '/fhir/Practitioner/1', status: 403, code: 'forbidden', diagnostics: /Practitioner/ },
  {
    name: 'a create of a type the policy does not allow',
    method: 'POST',
    target: '/fhir/Condition',
    body: { resourceType: 'Condition', subject: { reference: 'Patient/1' } },
    status: 403,
    code: 'forbidden',
    diagnostics: /Condition/,
  },
  { name: 'an operation the policy does not list', method: 'GET', target: '/fhir/Patient/1/$everything', status: 403, code: 'forbidden', diagnostics: /\$everything/ },
  { name: 'an _include that reaches an unreadable type', method: 'GET', target: '/fhir/Encounter?_include=Encounter:practitioner', status: 403, code: 'forbidden', diagnostics: /Practitioner/ },
  {
    name: 'a _revinclude of an unreadable type',
    method: 'GET',
    target: '/fhir/Patient?_revinclude=PractitionerRole:practitioner',
    status: 403,
    code: 'forbidden',
    diagnostics: /PractitionerRole|Practitioner/,
  },
  { name: 'a chained parameter through an unreadable type', method: 'GET', target: '/fhir/Encounter?practitioner.name=Smith', status: 403, code: 'forbidden', diagnostics: /Practitioner/ },
  { name: 'a reverse chain (_has) over an unreadable type', method: 'GET', target: '/fhir/Patient?_has:AuditEvent:patient:type=x', status: 403, code: 'forbidden', diagnostics: /AuditEvent/ },
  // Search parameters are checked before the policy: a _has whose reference cannot point at the searched type is the client's error.
  {
    name: 'a reverse chain (_has) whose reference cannot point at the searched type',
    method: 'GET',
    target: '/fhir/Patient?_has:PractitionerRole:practitioner:specialty=x',
    status: 400,
    code: 'invalid',
    diagnostics: /PractitionerRole\.practitioner cannot refer to Patient/,
  },
  {
    name: 'an _include in a POST _search form',
    method: 'POST',
    target: '/fhir/Encounter/_search',
    body: '_include=Encounter%3Apractitioner',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 403,
    code: 'forbidden',
    diagnostics: /Practitioner/,
  },
  {
    name: 'a transaction with a denied entry',
    method: 'POST',
    target: '/fhir',
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:4e2b5e7c-1b7e-4d7e-9f3a-0a0b0c0d0e0f', resource: patient, request: { method: 'POST', url: 'Patient' } }, { request: { method: 'DELETE', url: 'Observation/1' } }],
    },
    status: 403,
    code: 'forbidden',
    diagnostics: /Bundle\.entry\[1\]/,
    expression: /Bundle\.entry\[1\]/,
  },
  {
    name: 'a batch reading an unreadable type',
    method: 'POST',
    target: '/fhir',
    body: {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: 'Patient/1' } }, { request: { method: 'GET', url: 'Patient/2' } }, { request: { method: 'GET', url: 'Practitioner/1' } }],
    },
    status: 403,
    code: 'forbidden',
    diagnostics: /Bundle\.entry\[2\]/,
  },
  // Validation.
  {
    name: 'an invalid resource',
    method: 'POST',
    target: '/fhir/Patient',
    body: { resourceType: 'Patient', birthDate: '25/12/1974', gender: 'male' },
    status: 422,
    code: 'value',
    diagnostics: /birthDate|date/i,
    expression: /Patient\.birthDate/,
  },
  {
    name: 'an unknown element',
    method: 'POST',
    target: '/fhir/Observation',
    body: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, colour: 'blue' },
    status: 422,
    code: 'structure',
    diagnostics: /colour/,
    expression: /Observation\.colour/,
  },
  {
    name: 'an update whose body id differs from the URL',
    method: 'PUT',
    target: '/fhir/Patient/1',
    body: { ...patient, id: '2' },
    status: 400,
    code: 'invalid',
    diagnostics: /body id '2' does not match the URL's id '1'/,
  },
  { name: 'an unknown search parameter', method: 'GET', target: '/fhir/Patient?family=x&shoe-size=42', status: 400, code: 'not-supported', diagnostics: /shoe-size/ },
  { name: 'a malformed date search value', method: 'GET', target: '/fhir/Patient?birthdate=yesterday', status: 400, code: 'invalid', diagnostics: /birthdate/ },
];

/** The checks every refusal must pass: an OperationOutcome with status, code and diagnostic. */
function expectOutcome(res: Reply, r: Pick<Refusal, 'status' | 'code' | 'diagnostics' | 'expression'>): void {
  expect({ status: res.status, resourceType: res.json?.resourceType }).toEqual({ status: r.status, resourceType: 'OperationOutcome' });
  expect(res.headers['content-type']).toMatch(/^application\/fhir\+json/);
  const issues: Json[] = res.json.issue;
  expect(issues.length).toBeGreaterThan(0);
  expect(issues.map((i) => i.severity)).toContain(issues.some((i) => i.severity === 'fatal') ? 'fatal' : 'error');
  expect(issues.map((i) => i.code)).toContain(r.code);
  expect(issues.map((i) => i.diagnostics).join(' | ')).toMatch(r.diagnostics);
  if (r.expression) expect(issues.flatMap((i) => i.expression ?? []).join(' | ')).toMatch(r.expression);
}

describe('refusals: an OperationOutcome, and the upstream never sees the request', () => {
  test.each(REFUSALS.map((r) => [r.name, r] as const))('%s', async (_name, r) => {
    up.clear();
    const headers = Object.fromEntries(Object.entries(r.headers ?? {}).filter(([, v]) => v !== NO_HEADER));
    const omit = Object.entries(r.headers ?? {})
      .filter(([, v]) => v === NO_HEADER)
      .map(([k]) => k);
    const res = await send(proxy.origin, r.method, r.target, { body: r.body, headers, omit, fresh: true });
    expectOutcome(res, r);
    if (r.allow) expect(res.headers.allow).toMatch(r.allow);
    expect(up.traffic().map((x) => `${x.method} ${x.url}`)).toEqual([]);
  });
});

describe('refusals carry the request id', () => {
  // The id names the refusal in the proxy's log: the client needs it to ask about one.
  test("the client's X-Request-Id comes back on a refusal", async () => {
    const res = await send(proxy.origin, 'GET', '/fhir/Patientt/1', { headers: { 'x-request-id': 'refused-req-42' } });
    expect(res.status).toBe(404);
    expect(res.headers['x-request-id']).toBe('refused-req-42');
  });

  test('a generated X-Request-Id comes back on a refusal', async () => {
    const res = await send(proxy.origin, 'DELETE', '/fhir/Patient/1');
    expect(res.status).toBe(403);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('the refusal is logged with its request id, status and reason', async () => {
    await send(proxy.origin, 'GET', '/fhir/Practitioner/1', { headers: { 'x-request-id': 'refused-req-43' } });
    const line = await poll('the refusal log line', () => proxy.logs().find((l) => l.reqId === 'refused-req-43' && l.msg === 'refused'), { timeoutMs: 10_000, intervalMs: 20 });
    expect(line).toMatchObject({ status: 403, reason: 'policy' });
  });
});

describe('Prefer: handling=lenient', () => {
  test('drops the unknown search parameter, forwards the rest unchanged', async () => {
    up.clear();
    const res = await send(proxy.origin, 'GET', '/fhir/Patient?family=Chalmers&shoe-size=42&birthdate=ge1970', { headers: { prefer: 'handling=lenient' } });
    expect(res.status).toBe(200);
    const seen = up.traffic();
    expect(seen).toHaveLength(1);
    expect(seen[0].path).toBe('/Patient');
    expect(seen[0].query).toBe('family=Chalmers&birthdate=ge1970');
  });

  test('still refuses what is not a search-parameter problem', async () => {
    up.clear();
    const res = await send(proxy.origin, 'GET', '/fhir/Encounter?_include=Encounter:practitioner', { headers: { prefer: 'handling=lenient' } });
    expectOutcome(res, { status: 403, code: 'forbidden', diagnostics: /Practitioner/ });
    expect(up.traffic()).toEqual([]);
  });
});

describe('what the proxy lets through next to the refusals', () => {
  // Without these the refusals above could pass by refusing everything.
  test.each([
    ['a 64-character id', 'GET', `/fhir/Patient/${'a'.repeat(64)}`],
    ['repeated parameters', 'GET', '/fhir/Patient?birthdate=ge1970&birthdate=le1980'],
    ['Accept with a wildcard', 'GET', '/fhir/Patient/1'],
    ['_format=json', 'GET', '/fhir/Patient/1?_format=json'],
    ['an _include of a readable type', 'GET', '/fhir/Encounter?_include=Encounter:subject:Patient'],
  ])('%s', async (_name, method, target) => {
    up.clear();
    const res = await send(proxy.origin, method, target, { headers: { accept: 'application/xml;q=0.9, */*;q=0.1' } });
    expect({ status: res.status, outcome: res.status === 200 ? undefined : res.json }).toEqual({ status: 200, outcome: undefined });
    expect(up.traffic()).toHaveLength(1);
  });

  test(`nesting at exactly --max-depth ${MAX_DEPTH} is accepted`, async () => {
    up.clear();
    // nested(n) is 2n+3 levels deep (Patient, extension array, n × (object, array), leaf).
    const depth = Math.floor((MAX_DEPTH - 3) / 2);
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: nested(depth) });
    expect({ status: res.status, outcome: res.status === 201 ? undefined : res.json }).toEqual({ status: 201, outcome: undefined });
    expect(up.traffic()).toHaveLength(1);
  });
});

describe('malformed HTTP never crashes the proxy', () => {
  test('a request line Node cannot parse, a lying Content-Length and a cut-off body', async () => {
    const raw = async (text: string): Promise<string> =>
      new Promise((resolve) => {
        const s = net.connect(Number(new URL(proxy.origin).port), '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.end(text);
      });
    up.clear();
    expect(await raw('GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    await raw('POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 500\r\n\r\n{"resourceType":"Patient"}');
    await raw('POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n');
    expect(up.traffic()).toEqual([]);
    // Still serving.
    const res = await send(proxy.origin, 'GET', '/fhir/Patient/1');
    expect(res.status).toBe(200);
    expect(proxy.child.exitCode).toBeNull();
  });

  test('the process has logged no internal error for any of the refusals above', () => {
    const internal = proxy.logs().filter((l) => l.level >= 50);
    expect(internal.map((l) => l.msg)).toEqual([]);
  });
});
