// The policy file format, as data: every field, what it accepts and one line of documentation.
// The README's policy reference is written from this table; later per-tier settings (egress
// allow-lists, profiles) are new entries in TIER_FIELDS plus their defaults in tiers.ts.

import { certificateMatchProblem } from '../auth/client-certificate';
import { INTERACTION_KINDS, type InteractionKind } from '../fhir/interaction';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import { AUTHORIZATION_FIELD, type AuthorizationFields } from './authorization';
import { LIMITS_FIELD, type LimitsFields } from './limits';
import { SERVER_FIELD, type ServerFields } from './server';
import { SUPPLY_CHAIN_FIELD, type SupplyChainFields } from './supply-chain';
import { UPSTREAM_TLS_FIELD, type UpstreamTlsFields } from './upstream-tls';
import type { Field, ObjectSpec, Spec } from './yaml-check';

/** The tier fields as written in the file (before defaults). */
export interface TierFields {
  name: string;
  upstreams?: string[];
  workers?: number;
  timeoutMs?: number;
  mode?: 'audit' | 'enforce';
  enforcement?: 'required' | 'preferred';
  readOnly?: boolean;
  server?: ServerFields;
  tls?: UpstreamTlsFields;
}

/** One rule as written in the file. */
export interface RuleFields {
  resources: string[];
  interactions: InteractionKind[];
  operations?: string[];
  tier?: string;
  deny?: true;
  /** Only requests from these OAuth clients (client_id) match. */
  clients?: string[];
  /** Only requests whose token holds every one of these scopes match. */
  scopes?: string[];
  /** true: only tokens with a launch patient match; false: only tokens without one. */
  patient?: boolean;
  /** Only requests over a connection whose verified client certificate one of these names (mTLS). */
  certificates?: string[];
}

/** Whether a rule matches only some identities: a token's (needs authorization) or a client certificate's. */
export function namesIdentity(r: RuleFields): boolean {
  return r.clients !== undefined || r.scopes !== undefined || r.patient !== undefined || r.certificates !== undefined;
}

export interface PolicyFields {
  tiers: TierFields[];
  rules: RuleFields[];
  supplyChain?: SupplyChainFields;
  authorization?: AuthorizationFields;
  limits?: LimitsFields;
}

/** Tier names end up in cgroup paths, profile file names and metric labels: keep them plain. */
export const TIER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const OPERATION_NAME = /^\$[A-Za-z][A-Za-z0-9_-]*$/;
export const MAX_WORKERS = 64;
export const MAX_TIMEOUT_MS = 3_600_000;

const KINDS: ReadonlySet<string> = new Set(INTERACTION_KINDS);
const TYPES: ReadonlySet<string> = new Set(R4_RESOURCE_TYPES);
const TYPES_BY_LOWER = new Map(R4_RESOURCE_TYPES.map((t) => [t.toLowerCase(), t]));

function oneOf(values: readonly string[]): Spec {
  return {
    type: 'string',
    expect: `one of ${values.join(', ')}`,
    check: (v) => (values.includes(v) ? undefined : `${JSON.stringify(v)} is not one of ${values.join(', ')}`),
  };
}

function tierName(v: string): string | undefined {
  return TIER_NAME.test(v) ? undefined : `${JSON.stringify(v)} is not a tier name: lower-case letters, digits, '-' and '_', starting with a letter, at most 32 characters`;
}

function upstream(v: string): string | undefined {
  const shape = 'expected http://host:port[/base], https://host:port[/base] or unix:/absolute/socket/path';
  if (v.startsWith('unix:')) {
    const path = v.slice('unix:'.length);
    if (!path.startsWith('/') || path.includes('\0')) return `${JSON.stringify(v)}: ${shape}`;
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `${JSON.stringify(v)} is not a URL; ${shape}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${JSON.stringify(v)}: ${shape}`;
  if (url.username || url.password) return `${JSON.stringify(v)}: credentials do not belong in the policy file`;
  if (url.search || url.hash || v.includes('?') || v.includes('#')) return `${JSON.stringify(v)}: an upstream takes no query or fragment`;
  // An optional base path (`https://fhir.example.org/fhir`): plain segments, exactly as written
  // (URL parsing would silently resolve `..` or re-encode characters).
  const written = /^[a-z]+:\/\/[^/]*(.*)$/i.exec(v)?.[1] ?? '';
  if (written !== '' && written !== '/' && (written !== url.pathname || !/^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+\/?$/.test(written))) {
    return `${JSON.stringify(v)}: the base path must be plain segments (letters, digits, '.', '_', '~', '-'), e.g. https://fhir.example.org/fhir`;
  }
  return undefined;
}

function resource(v: string): string | undefined {
  if (v === '*' || TYPES.has(v)) return undefined;
  const cased = TYPES_BY_LOWER.get(v.toLowerCase());
  return `${JSON.stringify(v)} is not an R4 resource type${cased ? ` (did you mean ${cased}?)` : ''}`;
}

function interaction(v: string): string | undefined {
  if (KINDS.has(v)) return undefined;
  const close = v.length < 3 ? [] : INTERACTION_KINDS.filter((k) => k.startsWith(v.split('-')[0]) || v.includes(k));
  const hint = v.startsWith('conditional') ? ' (conditional forms are covered by create, update, patch and delete)' : close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : '';
  return `${JSON.stringify(v)} is not a FHIR interaction code${hint}; expected one of ${INTERACTION_KINDS.join(', ')}`;
}

function operation(v: string): string | undefined {
  if (OPERATION_NAME.test(v)) return undefined;
  if (OPERATION_NAME.test(`$${v}`)) return `${JSON.stringify(v)}: operation names start with '$' (write "$${v}")`;
  return `${JSON.stringify(v)} is not an operation name such as "$validate"`;
}

export const TIER_FIELDS: Readonly<Record<string, Field>> = {
  name: { spec: { type: 'string', expect: 'a tier name', check: tierName }, required: true, doc: 'the tier name rules refer to' },
  upstreams: {
    spec: { type: 'list', items: { type: 'string', expect: 'an upstream address', check: upstream }, unique: true },
    doc: 'FHIR servers serving the tier; empty or absent: embedded reference workers',
  },
  workers: { spec: { type: 'integer', min: 1, max: MAX_WORKERS }, doc: "number of workers the agent runs: reference workers, or the tier's server (tiers without upstreams)" },
  timeoutMs: { spec: { type: 'integer', min: 1, max: MAX_TIMEOUT_MS }, doc: 'upstream response timeout in milliseconds' },
  mode: { spec: oneOf(['audit', 'enforce']), doc: 'kernel confinement mode: audit (count only) or enforce (block)' },
  enforcement: { spec: oneOf(['required', 'preferred']), doc: 'refuse to start without kernel enforcement, or run degraded loudly' },
  readOnly: { spec: { type: 'boolean' }, doc: 'workers never write; derived from the rules, may only be set stricter' },
  server: SERVER_FIELD,
  tls: UPSTREAM_TLS_FIELD,
};

export const RULE_FIELDS: Readonly<Record<string, Field>> = {
  resources: {
    spec: { type: 'list', items: { type: 'string', expect: 'an R4 resource type or "*"', check: resource }, minItems: 1, unique: true },
    required: true,
    doc: 'R4 resource types the rule covers, or ["*"] for every type and the system level',
  },
  interactions: {
    spec: { type: 'list', items: { type: 'string', expect: 'a FHIR interaction code', check: interaction }, minItems: 1, unique: true },
    required: true,
    doc: 'FHIR CapabilityStatement interaction codes the rule covers',
  },
  operations: {
    spec: { type: 'list', items: { type: 'string', expect: 'an operation name', check: operation }, minItems: 1, unique: true },
    doc: 'with interaction operation: the $operations covered (absent: every operation)',
  },
  tier: { spec: { type: 'string', expect: 'a tier name', check: tierName }, doc: 'the tier serving what the rule matches' },
  deny: { spec: { type: 'boolean', only: true }, doc: 'refuse what the rule matches (403)' },
  clients: {
    spec: { type: 'list', items: { type: 'string', expect: 'a client id', check: (v) => (v.trim() === '' ? 'an empty client id' : undefined) }, minItems: 1, unique: true },
    doc: 'with authorization: the rule matches only requests from these OAuth clients',
  },
  scopes: {
    spec: { type: 'list', items: { type: 'string', expect: 'a scope', check: (v) => (/^\S+$/.test(v) ? undefined : `${JSON.stringify(v)} is not a scope`) }, minItems: 1, unique: true },
    doc: 'with authorization: the rule matches only tokens holding every one of these scopes',
  },
  patient: { spec: { type: 'boolean' }, doc: 'with authorization: true matches only tokens with a launch patient, false only tokens without' },
  certificates: {
    spec: { type: 'list', items: { type: 'string', expect: 'a certificate match', check: certificateMatchProblem }, minItems: 1, unique: true },
    doc: 'with --tls-client-ca: the rule matches only clients whose verified certificate one entry names (cn:, dns:, uri:, email:, ip:, sha256:)',
  },
};

export const POLICY_SPEC: ObjectSpec = {
  type: 'object',
  fields: {
    tiers: {
      spec: { type: 'list', items: { type: 'object', fields: TIER_FIELDS }, minItems: 1 },
      required: true,
      doc: 'tiers, from least to most privileged',
    },
    rules: {
      spec: { type: 'list', items: { type: 'object', fields: RULE_FIELDS }, minItems: 1 },
      required: true,
      doc: 'rules, first match wins, no match = deny',
    },
    supplyChain: SUPPLY_CHAIN_FIELD,
    authorization: AUTHORIZATION_FIELD,
    limits: LIMITS_FIELD,
  },
};
