import { newRequestId, requestIdFrom } from '../../src/proxy/request-id';

const V8_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('generates UUID-shaped version 8 ids that never repeat within the process', () => {
    const ids = Array.from({ length: 10_000 }, () => newRequestId());
    for (const id of ids.slice(0, 50)) expect(id).toMatch(V8_SHAPE);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps a short, safe client id and replaces anything else', () => {
    expect(requestIdFrom('abc-123.x:y@z+=')).toBe('abc-123.x:y@z+=');
    for (const bad of ['', 'a b', 'x'.repeat(129), 'id\r\nx-evil: 1', 'ü']) expect(requestIdFrom(bad)).toMatch(V8_SHAPE);
    expect(requestIdFrom(['a', 'b'])).toMatch(V8_SHAPE);
    expect(requestIdFrom(undefined)).toMatch(V8_SHAPE);
  });
});
