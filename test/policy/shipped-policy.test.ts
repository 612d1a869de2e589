// profiles/policy.yaml, the policy `fhirguard up` runs by default: it loads cleanly and
// decides real requests (classified by fhirguard's own classify) as its comments say.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { classify, type RequestView } from '../../src/fhir/classify';
import { compilePolicy, loadPolicy } from '../../src/policy';
import { outcome } from './helpers';

const FILE = path.resolve(__dirname, '..', '..', 'profiles', 'policy.yaml');
const policy = loadPolicy(FILE);

function req(method: string, url: string, extra: Partial<RequestView> = {}): RequestView {
  const q = url.indexOf('?');
  return { method, path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: {}, ...extra };
}

const pt = { resourceType: 'Patient', id: '1' };
function bundle(type: string, ...requests: Record<string, unknown>[]): unknown {
  return { resourceType: 'Bundle', type, entry: requests.map((request) => ({ request, resource: pt })) };
}

describe('the shipped policy', () => {
  test('three embedded tiers, least to most privileged, no warnings', () => {
    expect(policy.file).toBe(FILE);
    expect(policy.tiers.map((t) => [t.name, t.rank, t.upstreams, t.workers, t.readOnly, t.mode, t.enforcement])).toEqual([
      ['read', 0, [], 2, true, 'enforce', 'preferred'],
      ['write', 1, [], 1, false, 'enforce', 'preferred'],
      ['ops', 2, [], 1, false, 'enforce', 'preferred'],
    ]);
    expect(policy.tiers.map((t) => t.timeoutMs)).toEqual([10000, 10000, 30000]);
    expect(policy.warnings).toEqual([]);
  });

  const ALLOWED: [string, string, Partial<RequestView>, string][] = [
    ['GET', '/metadata', {}, 'read'],
    ['GET', '/Patient/1', {}, 'read'],
    ['HEAD', '/Patient/1', {}, 'read'],
    ['GET', '/Patient/1/_history/2', {}, 'read'],
    ['GET', '/Patient/1/_history', {}, 'read'],
    ['GET', '/Patient/_history', {}, 'read'],
    ['GET', '/_history', {}, 'read'],
    ['GET', '/Observation?code=1234-5&_include=Observation:subject&_revinclude=Provenance:target', {}, 'read'],
    ['GET', '/Encounter?_include=Encounter:practitioner&practitioner.name=x', {}, 'read'],
    ['GET', '/Patient?_has:Observation:patient:code=1234-5', {}, 'read'],
    ['GET', '/Observation?_include:iterate=*', {}, 'read'],
    ['POST', '/Observation/_search', { form: 'code=1234-5', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'read'],
    ['GET', '/?_type=Patient,Observation', {}, 'read'],
    ['GET', '/', {}, 'read'],
    ['GET', '/Patient/1/Observation', {}, 'read'],
    ['GET', '/Patient/1/*', {}, 'read'],
    ['POST', '/Patient', { body: pt }, 'write'],
    ['POST', '/Patient', { body: pt, headers: { 'if-none-exist': 'identifier=x' } }, 'write'],
    ['PUT', '/Patient/1', { body: pt }, 'write'],
    ['PUT', '/Patient?identifier=x', { body: pt }, 'write'],
    ['PATCH', '/Patient/1', { body: [], headers: { 'content-type': 'application/json-patch+json' } }, 'write'],
    ['PATCH', '/Patient?identifier=x', { body: [], headers: { 'content-type': 'application/json-patch+json' } }, 'write'],
    ['POST', '/Bundle', { body: bundle('transaction', { method: 'DELETE', url: 'Patient/1' }) }, 'write'],
    ['POST', '/Patient/$validate', { body: pt }, 'ops'],
    ['POST', '/Patient/1/$validate', { body: pt }, 'ops'],
    ['GET', '/Patient/1/$everything', {}, 'ops'],
    ['GET', '/Patient/$everything', {}, 'ops'],
    ['POST', '/', { body: bundle('batch', { method: 'GET', url: 'Patient/1' }, { method: 'POST', url: 'Patient' }, { method: 'GET', url: 'Patient/1/$everything' }) }, 'ops'],
    ['POST', '/', { body: bundle('transaction', { method: 'PUT', url: 'Patient/1' }, { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=y' }) }, 'ops'],
  ];

  test.each(ALLOWED)('%s %s → %s', (method, url, extra, tier) => {
    expect(outcome(policy, classify(req(method, url, extra)))).toEqual({ tier });
  });

  const REFUSED: [string, string, Partial<RequestView>, string][] = [
    ['DELETE', '/Patient/1', {}, 'delete of Patient is denied by the policy (rules[5])'],
    ['DELETE', '/Patient?identifier=x', {}, 'conditional delete of Patient is denied by the policy (rules[5])'],
    ['GET', '/Encounter/1/$everything', {}, 'no policy rule allows operation $everything on Encounter/[id]'],
    ['POST', '/Patient/1/$meta-add', { body: { resourceType: 'Parameters' } }, 'no policy rule allows operation $meta-add on Patient/[id]'],
    [
      'POST',
      '/',
      { body: bundle('transaction', { method: 'PUT', url: 'Patient/1' }, { method: 'DELETE', url: 'Patient/2' }) },
      'transaction refused: Bundle.entry[1]: delete of Patient is denied by the policy (rules[5])',
    ],
  ];

  test.each(REFUSED)('%s %s is refused', (method, url, extra, diagnostics) => {
    expect(outcome(policy, classify(req(method, url, extra)))).toMatchObject({ status: 403, reason: 'policy', diagnostics });
  });

  test('the commented example that enables delete works as documented', () => {
    const text = fs.readFileSync(FILE, 'utf8');
    const example = text.split('\n').filter((l) => /^ {2}# {3}(- resources| {2}interactions| {2}tier):/.test(l));
    expect(example).toHaveLength(3);
    const uncommented = example.map((l) => `  ${l.slice('  #   '.length)}`);
    const denyAt = text.indexOf('  - resources: ["*"]\n    interactions: [delete]\n    deny: true');
    expect(denyAt).toBeGreaterThan(0);
    const enabled = compilePolicy(`${text.slice(0, denyAt)}${uncommented.join('\n')}\n${text.slice(denyAt)}`, 'enabled.yaml');
    expect(outcome(enabled, classify(req('DELETE', '/Observation/1')))).toEqual({ tier: 'write' });
    expect(outcome(enabled, classify(req('DELETE', '/Patient/1')))).toMatchObject({ status: 403 });
  });
});
