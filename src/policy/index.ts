// The policy stage of the request path (classify → policy → validate → route): which tier
// serves an interaction, or a 403 OperationOutcome saying what was denied and why.

export type { Policy, TierConfig } from './types';
export { PolicyError, type PolicyIssue } from './policy-error';
export { compilePolicy, loadPolicy } from './load';
export type { SupplyChainPolicy, SupplyChainWaiver } from './supply-chain';
export type { ServerConfig, ServerEgress } from './server';
export type { AuthorizationConfig, TokenAlgorithm } from './authorization';
export type { RuleSubject } from './identity-rules';
