// The policy a campaign runs under: three tiers like the shipped policy, reading
// Practitioner denied at every level (read, vread, searches, history), system history
// denied (it would return Practitioners), and delete denied everywhere. The upstream
// oracles (oracles/upstream.ts) decide these denials on their own, without the proxy's code.

export const DENIED_TYPE = 'Practitioner';

export function campaignPolicy(upstreams: { read: string; write: string; ops: string }, timeoutMs: number): object {
  return {
    tiers: [
      { name: 'read', upstreams: [upstreams.read], timeoutMs },
      { name: 'write', upstreams: [upstreams.write], timeoutMs },
      { name: 'ops', upstreams: [upstreams.ops], timeoutMs },
    ],
    rules: [
      { resources: [DENIED_TYPE], interactions: ['read', 'vread', 'search-type', 'history-instance', 'history-type'], deny: true },
      { resources: ['*'], interactions: ['read', 'vread', 'search-type', 'search-system', 'history-instance', 'history-type', 'capabilities'], tier: 'read' },
      { resources: ['*'], interactions: ['create', 'update', 'patch'], tier: 'write' },
      { resources: ['*'], interactions: ['batch', 'transaction'], tier: 'ops' },
      { resources: ['*'], interactions: ['operation'], operations: ['$validate'], tier: 'ops' },
      { resources: ['Patient'], interactions: ['operation'], operations: ['$everything'], tier: 'ops' },
      { resources: ['*'], interactions: ['delete'], deny: true },
    ],
  };
}
