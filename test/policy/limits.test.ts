// The limits: block and the limiter it makes, with an injected clock: token bucket
// arithmetic, the client a request counts against, bounded memory, slots released once.

import { EventEmitter } from 'node:events';
import { compilePolicy, PolicyError } from '../../src/policy';
import { RequestLimits, TokenBucket } from '../../src/proxy/limits';

const base = `tiers:
  - name: all
    upstreams: ["http://127.0.0.1:9001"]
rules:
  - { resources: ["*"], interactions: [read], tier: all }
`;

describe('TokenBucket', () => {
  test('takes a burst at once, then one per 1/rate seconds, and says how long to wait', () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([0, 0, 0]);
    expect(b.take(0)).toBe(1);
    expect(b.take(499)).toBe(1); // 0.998 tokens
    expect(b.take(500)).toBe(0); // a token every 500 ms
    expect(b.take(500)).toBe(1);
    // Never more than the burst, however long it was idle.
    expect([b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)]).toEqual([0, 0, 0, 1]);
  });

  test('a slow rate says a longer wait', () => {
    const b = new TokenBucket(0.1 as never, 1, 0);
    expect(b.take(0)).toBe(0);
    expect(b.take(0)).toBe(10);
  });
});

function fakeRequest(ip: string, clientId?: string) {
  return { ip, raw: { socket: {} }, fhirguard: clientId ? { identity: { clientId } } : null } as never;
}
function fakeReply() {
  const raw = new EventEmitter();
  return { reply: { raw } as never, end: () => raw.emit('close') };
}

describe('RequestLimits', () => {
  test('a policy without limits makes no limiter', () => {
    expect(RequestLimits.of(compilePolicy(base, 'p.yaml').limits)).toBeUndefined();
  });

  test('counts a token client by its client id, others by address; named clients have their own limits', () => {
    const policy = compilePolicy(`${base}limits:\n  perClient: { rate: 1, burst: 1 }\n  clients:\n    - { client: bulk, rate: 1, burst: 3 }\n`, 'p.yaml');
    const t = 0;
    const limits = RequestLimits.of(policy.limits, () => t)!;
    const admit = (ip: string, id?: string) => limits.admitClient(fakeRequest(ip, id), fakeReply().reply)?.reason ?? 'ok';
    expect([admit('10.0.0.1'), admit('10.0.0.1')]).toEqual(['ok', 'rate-limit']);
    // Another address, and a token client on the same address: their own buckets.
    expect([admit('10.0.0.2'), admit('10.0.0.1', 'ehr')]).toEqual(['ok', 'ok']);
    expect([admit('10.0.0.1', 'bulk'), admit('10.0.0.9', 'bulk'), admit('10.0.0.8', 'bulk'), admit('10.0.0.1', 'bulk')]).toEqual(['ok', 'ok', 'ok', 'rate-limit']);
  });

  test('a concurrency slot is held until the response closes, exactly once', () => {
    const policy = compilePolicy(`${base}limits:\n  global: { concurrency: 1 }\n  perClient: { concurrency: 1 }\n`, 'p.yaml');
    const limits = RequestLimits.of(policy.limits)!;
    const first = fakeReply();
    expect(limits.admitGlobal(first.reply)).toBeUndefined();
    expect(limits.admitClient(fakeRequest('10.0.0.1'), first.reply)).toBeUndefined();
    expect(limits.admitGlobal(fakeReply().reply)?.reason).toBe('concurrency-limit');
    expect(limits.inflight).toBe(1);
    first.end();
    first.end();
    expect(limits.inflight).toBe(0);
    const second = fakeReply();
    expect(limits.admitGlobal(second.reply)).toBeUndefined();
    expect(limits.admitClient(fakeRequest('10.0.0.1'), second.reply)).toBeUndefined();
  });

  test('remembers a bounded number of clients', () => {
    const policy = compilePolicy(`${base}limits:\n  perClient: { rate: 1000 }\n`, 'p.yaml');
    const limits = RequestLimits.of(policy.limits)!;
    for (let i = 0; i < 60_000; i++) limits.admitClient(fakeRequest(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), fakeReply().reply);
    expect(limits.clientCount).toBe(50_000);
  });
});

describe('limits: in the policy file', () => {
  test('a bad value is reported at its line and column', () => {
    expect(() => compilePolicy(`${base}limits:\n  perClient: { rate: 0 }\n`, 'p.yaml')).toThrow(/p\.yaml:7:\d+: limits\.perClient\.rate/);
    expect(() => compilePolicy(`${base}limits:\n  global: { rps: 10 }\n`, 'p.yaml')).toThrow(PolicyError);
    expect(() => compilePolicy(`${base}limits:\n  clients:\n    - { client: a, rate: 1 }\n    - { client: a, rate: 2 }\n`, 'p.yaml')).toThrow(/client 'a' is listed twice/);
  });

  test('burst defaults to one second of rate', () => {
    expect(compilePolicy(`${base}limits:\n  global: { rate: 40 }\n`, 'p.yaml').limits.global).toEqual({ rate: 40, burst: 40 });
  });
});
