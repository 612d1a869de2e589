// What a client is told when the agent refused a tier's workers: the proxy's 503 names the
// check and the reason in words, with no path or digest (those are in the agent's log and
// GET /enforcement); a tier that merely has no healthy member keeps the plain answer.

import { NoHealthyMemberError, upstreamFault } from '../../src/proxy/errors';
import { describeRefusal, REFUSAL_REASONS } from '../../src/trust/reasons';

test('every trust reason has words of its own, with the label; none names a path or a digest', () => {
  const texts = REFUSAL_REASONS.map((r) => describeRefusal('trust', r));
  expect(new Set(texts).size).toBe(REFUSAL_REASONS.length);
  for (const [i, r] of REFUSAL_REASONS.entries()) {
    expect(texts[i]).toMatch(new RegExp(`^the trust check failed: [a-zA-Z' ]+ \\(${r}\\)$`));
    expect(texts[i]).not.toMatch(/\/|sha256|[0-9a-f]{12}/);
  }
  expect(describeRefusal('trust', 'seccomp')).toBe('the trust check failed: the seccomp profile differs from the signed one (seccomp)');
  expect(describeRefusal('image-scan', 'scan')).toBe('the worker image failed its vulnerability scan gate (scan)');
  // An agent newer than the proxy: its label, as is.
  expect(describeRefusal('trust', 'something-new')).toBe('the trust check failed: something-new (something-new)');
});

test("the proxy's 503: refused by the agent, or simply no healthy member", () => {
  const refused = upstreamFault(new NoHealthyMemberError('read', describeRefusal('trust', 'policy')), 'read', 10_000);
  expect({ kind: refused.kind, status: refused.error.status, reason: refused.error.reason, outcome: refused.error.toOutcome() }).toEqual({
    kind: 'refused',
    status: 503,
    reason: 'tier-refused',
    outcome: {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'transient',
          diagnostics: "tier 'read' is unavailable: the agent refused to start its workers: the trust check failed: the policy differs from the signed one (policy)",
        },
      ],
    },
  });
  const down = upstreamFault(new NoHealthyMemberError('read'), 'read', 10_000);
  expect({ kind: down.kind, status: down.error.status, reason: down.error.reason }).toEqual({ kind: 'unavailable', status: 503, reason: 'no-healthy-upstream' });
});
