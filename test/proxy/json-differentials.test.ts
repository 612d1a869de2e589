// Bodies JSON readers disagree on, and narratives an XML reader and a browser disagree on,
// sent to the real proxy process: each is refused with a FHIR OperationOutcome naming the
// problem, and the recording upstream never sees it. The same resources written plainly go
// through, byte for byte.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxy, stopAllProxies, type ProxyProcess } from '../helpers/proxy-process';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream';
import { closeClients, send } from '../helpers/http-client';
import type { Json } from '../helpers/json';

let dir: string;
let proxy: ProxyProcess;
let up: RecordingUpstream;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-proxy-json-'));
  up = await startRecordingUpstream({ name: 'write' });
  proxy = await startProxy({
    dir,
    policy: {
      tiers: [{ name: 'write', upstreams: [up.url] }],
      rules: [
        { resources: ['Patient', 'Practitioner'], interactions: ['create', 'update'], tier: 'write' },
        { resources: ['*'], interactions: ['transaction'], tier: 'write' },
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

const NS = 'http://www.w3.org/1999/xhtml';

const REFUSED: [string, string, string, number, string, RegExp, string[] | undefined][] = [
  // name, target, body, status, issue code, diagnostics, expression
  [
    'resourceType written twice',
    '/fhir/Patient',
    '{"resourceType":"Practitioner","active":true,"resourceType":"Patient"}',
    400,
    'structure',
    /'resourceType' appears more than once/,
    ['resourceType'],
  ],
  [
    'a key written twice inside a transaction entry',
    '/fhir',
    '{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","gender":"male","gender":"female"},"request":{"method":"POST","url":"Patient"}}]}',
    400,
    'structure',
    /'gender'/,
    ['entry[0].resource.gender'],
  ],
  ['a number no double holds', '/fhir/Patient', '{"resourceType":"Patient","multipleBirthInteger":1.00000000000000000001}', 400, 'invalid', /1\.00000000000000000001/, undefined],
  ['a lone surrogate', '/fhir/Patient', '{"resourceType":"Patient","name":[{"family":"x\\ud800"}]}', 400, 'invalid', /lone surrogate/, undefined],
  ['an escaped NUL', '/fhir/Patient', '{"resourceType":"Patient","name":[{"family":"x\\u0000y"}]}', 400, 'invalid', /NUL/, undefined],
  [
    'a narrative link with an encoded javascript: scheme',
    '/fhir/Patient',
    JSON.stringify({ resourceType: 'Patient', text: { status: 'generated', div: `<div xmlns="${NS}"><a href="&#106;avascript:alert(1)">x</a></div>` } }),
    422,
    'invariant',
    /txt-1.*javascript/,
    ['Patient.text.div'],
  ],
  [
    'a narrative style with a CSS escape',
    '/fhir/Patient',
    JSON.stringify({ resourceType: 'Patient', text: { status: 'generated', div: `<div xmlns="${NS}"><p style="background:\\75 rl(http://evil.example/x)">x</p></div>` } }),
    422,
    'invariant',
    /txt-1.*escape/,
    ['Patient.text.div'],
  ],
];

describe('refused before any upstream sees them', () => {
  test.each(REFUSED)('%s', async (_name, target, body, status, code, diagnostics, expression) => {
    up.clear();
    const res = await send(proxy.origin, 'POST', target, { body, fresh: true });
    expect({ status: res.status, resourceType: res.json?.resourceType }).toEqual({ status, resourceType: 'OperationOutcome' });
    const issues: Json[] = res.json.issue;
    expect(issues.map((i) => i.code)).toContain(code);
    expect(issues.map((i) => i.diagnostics).join(' | ')).toMatch(diagnostics);
    if (expression) expect(issues.flatMap((i) => i.expression ?? [])).toEqual(expect.arrayContaining(expression));
    expect(up.traffic()).toEqual([]);
  });
});

describe('what every reader reads alike goes through as sent', () => {
  test.each([
    ['-0 and exact numbers', '{"resourceType":"Patient","multipleBirthInteger":-0,"extension":[{"url":"http://example.org/x","valueDecimal":3.5888283845385716}]}'],
    ['a leading byte order mark', '\ufeff{"resourceType":"Patient","active":true}'],
    ['a surrogate pair spelled as escapes', '{"resourceType":"Patient","name":[{"family":"\\ud83d\\ude00"}]}'],
  ])('%s', async (_name, body) => {
    up.clear();
    const res = await send(proxy.origin, 'POST', '/fhir/Patient', { body: Buffer.from(body), fresh: true });
    expect(res.status).toBeLessThan(300);
    const seen = up.traffic();
    expect(seen).toHaveLength(1);
    expect(seen[0].body.equals(Buffer.from(body))).toBe(true);
  });
});
