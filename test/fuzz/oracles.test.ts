// The campaign's oracles must be able to fail: each is fed a request or an answer it has to
// flag and one it has to let pass.

import { gzipSync } from 'node:zlib';
import { caseAt } from '../../fuzz/generate/index';
import type { SeenRequest } from '../../fuzz/harness/recording-upstream';
import { checkAnswer } from '../../fuzz/oracles/response';
import { readStrictJson } from '../../fuzz/oracles/strict-json';
import { checkUpstreamRequest, serverSegments } from '../../fuzz/oracles/upstream';
import { headRequests, parseResponses } from '../../fuzz/send/raw';

function seen(method: string, url: string, headers: Record<string, string> = {}, body = ''): SeenRequest {
  return { tier: 'read', method, url, headers, rawHeaders: [], body: Buffer.from(body) };
}

const oracles = (r: SeenRequest) => checkUpstreamRequest(r).map((v) => v.oracle);

describe('upstream oracles', () => {
  test.each([
    ['GET', '/Practitioner/1'],
    ['GET', '/Patient/../Practitioner/1'],
    ['GET', '/%50ractitioner?name=x'],
    ['HEAD', '/Practitioner;x=1/1/_history'],
    ['POST', '/Practitioner/_search'],
    ['GET', '/Patient/1/Practitioner'],
    ['GET', '/Encounter?_include=Encounter:participant:Practitioner'],
    ['GET', '/Patient/1/Observation?_type=Practitioner'],
    ['GET', '/Patient?_has:Practitioner:x:name=y'],
    ['GET', '/_history'],
    ['GET', '/?name=x'],
    ['DELETE', '/Patient/1'],
  ])('%s %s reaches what the policy denies', (method, url) => {
    expect(oracles(seen(method, url))).toContain('upstream-denied');
  });

  test.each([
    ['GET', '/Patient/1'],
    ['GET', '/Patient?name=x&_include=Patient:organization'],
    ['GET', '/PractitionerRole?_count=1'],
    ['GET', '/Medication/1?_type=Practitioner'],
    ['GET', '/?_type=Patient,Observation'],
    ['POST', '/Practitioner'],
  ])('%s %s is allowed', (method, url) => {
    expect(oracles(seen(method, url, {}, method === 'POST' ? '{"resourceType":"Practitioner"}' : ''))).toEqual([]);
  });

  test('override and Expect headers, _method, ambiguous or encoded bodies are flagged', () => {
    expect(oracles(seen('GET', '/Patient', { 'x-http-method-override': 'DELETE' }))).toEqual(['upstream-override']);
    expect(oracles(seen('GET', '/Patient?_method=DELETE'))).toEqual(['upstream-override']);
    expect(oracles(seen('POST', '/Patient', { expect: '100-continue' }, '{"resourceType":"Patient"}'))).toEqual(['upstream-expect']);
    expect(oracles(seen('POST', '/Patient', {}, '{"resourceType":"Practitioner","resourceType":"Patient"}'))).toEqual(['upstream-body']);
    expect(oracles(seen('POST', '/Patient', {}, '{"resourceType":"Practitioner"}'))).toEqual(['upstream-body']);
    expect(oracles(seen('PUT', '/Observation', {}, '{"resourceType":"Observation"}'))).toEqual(['upstream-denied']);
    const gz = { ...seen('POST', '/Patient', { 'content-encoding': 'gzip' }), body: gzipSync('{"resourceType":"Patient"}') };
    expect(oracles(gz)).toEqual([]);
    const lying = seen('POST', '/Patient', { 'content-encoding': 'gzip' }, '{"resourceType":"Patient"}');
    expect(oracles(lying)).toEqual(['upstream-body']);
    const tx = '{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Practitioner/1"}}]}';
    expect(oracles(seen('POST', '/', {}, tx))).toEqual(['upstream-denied']);
  });

  test('paths are read the way a lenient server reads them', () => {
    expect(serverSegments('/Patient/%2e%2e/Practitioner%2F1')).toEqual(['Practitioner', '1']);
  });
});

describe('strict JSON', () => {
  test.each([
    ['{"a":1,"a":2}', /twice/],
    ['{"a":"\\ud800"}', /lone surrogate/],
    ['{"a":"\\u0000"}', /NUL/],
    ['{"a":1e400}', /overflows/],
    ['{"a":1.00000000000000000001}', /digits/],
    ['{} x', /after the document/],
  ])('%s is ambiguous', (text, why) => {
    const r = readStrictJson(Buffer.from(text));
    expect(r.ok ? 'ok' : r.why).toMatch(why);
  });

  test('plain JSON and invalid UTF-8', () => {
    expect(readStrictJson(Buffer.from('{"a":[1,2.5,"\\u00e9\\ud83d\\ude00"],"b":{"a":null}}'))).toEqual({ ok: true, value: { a: [1, 2.5, 'é😀'], b: { a: null } } });
    expect(readStrictJson(Buffer.from([0x7b, 0xff, 0x7d]))).toEqual({ ok: false, why: 'not UTF-8' });
    // A leading byte order mark is skipped: readers skip it or refuse the text, none reads it differently.
    expect(readStrictJson(Buffer.from('\ufeff{"a":1}'))).toEqual({ ok: true, value: { a: 1 } });
  });
});

describe('response oracles', () => {
  const outcome = JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'why' }] });
  test('a refusal must be an OperationOutcome with a diagnostic and an X-Request-Id', () => {
    expect(checkAnswer({ status: 400, headers: { 'x-request-id': 'r' }, body: outcome, head: false })).toEqual([]);
    expect(checkAnswer({ status: 400, headers: {}, body: outcome, head: false }).map((v) => v.oracle)).toEqual(['refusal-is-outcome']);
    expect(checkAnswer({ status: 400, headers: { 'x-request-id': 'r' }, body: '{"error":"Bad Request"}', head: false }).map((v) => v.oracle)).toEqual(['refusal-is-outcome']);
    expect(checkAnswer({ status: 417, headers: { 'x-request-id': 'r' }, body: '', head: false }).map((v) => v.oracle)).toEqual(['refusal-is-outcome']);
  });
  test('500 always, 502-504 while upstreams are healthy', () => {
    expect(checkAnswer({ status: 500, headers: { 'x-request-id': 'r' }, body: outcome, head: false }).map((v) => v.oracle)).toEqual(['no-500']);
    expect(checkAnswer({ status: 502, headers: { 'x-request-id': 'r' }, body: outcome, head: false }).map((v) => v.oracle)).toEqual(['no-gateway-error']);
  });
  test("an upstream's own answer is not the proxy's refusal", () => {
    expect(checkAnswer({ status: 405, headers: { 'x-served-by': 'read' }, body: 'x', head: false })).toEqual([]);
  });
});

test('raw answers are split, a HEAD answer included', () => {
  const text = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n';
  expect(parseResponses(text).responses.map((r) => [r.status, r.body])).toEqual([
    [100, ''],
    [200, 'ok'],
    [200, ''],
  ]);
});

test('pipelined answers after a HEAD answer are split at its head, whatever its Content-Length', () => {
  const sent = 'HEAD /fhir/x HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\nGET /fhir/Patient/1 HTTP/1.1\r\nhost: h\r\n\r\n';
  expect(headRequests(sent)).toEqual([true, false]);
  const text = 'HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
  expect(parseResponses(text, headRequests(sent)).responses.map((r) => [r.status, r.body])).toEqual([
    [400, ''],
    [200, 'ok'],
  ]);
});

test('a case is rebuilt from its seed and index alone', () => {
  expect(caseAt(7, 1234)).toEqual(caseAt(7, 1234));
  expect(caseAt(7, 1234)).not.toEqual(caseAt(8, 1234));
});

test('a POSTed search is judged on its form body', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  expect(oracles(seen('POST', '/Patient/_search', form, 'name=x'))).toEqual([]);
  expect(oracles(seen('POST', '/Encounter/_search', form, '_include=Encounter:participant:Practitioner'))).toEqual(['upstream-denied']);
  expect(oracles(seen('POST', '/Encounter/_search', {}, '{"resourceType":"Encounter"}'))).toEqual(['upstream-body']);
});
