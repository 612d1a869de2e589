// Why a worker start was refused, as a fixed set of labels (metric labels, the API's
// `refusal.reason`) with the words the proxy's 503 uses for them. Pure data: the proxy reads
// it without loading any of the agent's code.

/** The signed-statement check's reasons (src/trust/verify.ts decides them). */
export const REFUSAL_REASONS = [
  'unsigned', // no statement for the tier
  'malformed', // an envelope or statement that does not parse
  'signature', // no signature that verifies under a trusted key
  'tier', // a statement for another tier
  'expired', // the statement's own expiry passed
  'subject', // another image or install than the one signed
  'seccomp', // the seccomp profile differs from the signed one
  'ebpf', // the eBPF profile differs
  'policy', // the policy file (or the policy the agent loaded) differs
  'scan-report', // the image's scan report (findings, advisory database, waivers) differs from the signed one
  'waiver-expired', // a waiver the signed scan relied on has expired
  'unreadable', // an artifact could not be read or parsed
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Which check refused a start: the signed statements, or the image's scan gate (reason `scan`). */
export type RefusalCheck = 'trust' | 'image-scan';

const TEXT: Record<RefusalReason, string> = {
  unsigned: 'the tier has no signed statement',
  malformed: "the tier's signed statement cannot be read",
  signature: "the tier's statement is not signed by a trusted key",
  tier: 'the signed statement is for another tier',
  expired: 'the signed statement has expired',
  subject: 'the worker image or install differs from the signed one',
  seccomp: 'the seccomp profile differs from the signed one',
  ebpf: 'the eBPF profile differs from the signed one',
  policy: 'the policy differs from the signed one',
  'scan-report': "the image's scan report differs from the signed one",
  'waiver-expired': 'a vulnerability waiver the signed scan relied on has expired',
  unreadable: 'an artifact the statement binds cannot be read',
};

/**
 * A refusal in words a client may see (no paths, no digests: the agent's log and GET
 * /enforcement have those).
 */
export function describeRefusal(check: string | undefined, reason: string): string {
  if (check === 'image-scan') return `the worker image failed its vulnerability scan gate (${reason})`;
  const text = (TEXT as Record<string, string | undefined>)[reason];
  return `the trust check failed: ${text ?? reason} (${reason})`;
}
