import type { FastifyRequest } from 'fastify';
import { forwardRequestHeaders, rewriteResponseHeaders } from '../../src/proxy/headers';

/** The parts of a Fastify request the header functions read. */
function request(headers: Record<string, string>): FastifyRequest {
  return { headers, ip: '198.51.100.4', protocol: 'http', id: 'req-1' } as unknown as FastifyRequest;
}

describe('header hygiene', () => {
  it("never forwards a client's X-Forwarded-Host, even when there is no Host to set it from", () => {
    const client = { 'x-forwarded-host': 'spoofed.example.net', accept: 'application/fhir+json' };
    const out = forwardRequestHeaders(request(client), { ...client }, '/fhir', false);
    expect(out).not.toHaveProperty('x-forwarded-host');
    expect(out).toMatchObject({ accept: 'application/fhir+json', 'x-forwarded-for': '198.51.100.4', 'x-request-id': 'req-1', 'x-forwarded-prefix': '/fhir' });
  });

  it('announces a length upstream only when a body is forwarded', () => {
    const client = { host: 'fhir.example.org', 'content-length': '12', 'content-type': 'application/fhir+json' };
    expect(forwardRequestHeaders(request(client), { ...client }, '/fhir', false)).not.toHaveProperty('content-length');
    expect(forwardRequestHeaders(request(client), { ...client }, '/fhir', true)).toMatchObject({ 'content-length': '12', 'x-forwarded-host': 'fhir.example.org' });
  });

  it('drops the hop-by-hop response headers, plain keep-alive or naming others', () => {
    const plain = rewriteResponseHeaders({ connection: 'keep-alive', 'keep-alive': 'timeout=5', etag: 'W/"1"' }, request({}), '/fhir', undefined);
    expect(plain).toEqual({ etag: 'W/"1"', 'x-request-id': 'req-1' });
    const naming = rewriteResponseHeaders({ connection: 'Keep-Alive, X-Upstream-Hop', 'x-upstream-hop': '1', etag: 'W/"1"' }, request({}), '/fhir', undefined);
    expect(naming).toEqual({ etag: 'W/"1"', 'x-request-id': 'req-1' });
  });
});
