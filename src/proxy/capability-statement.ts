// The front door's own CapabilityStatement (`GET [base]/metadata`). A client, or a conformance
// tool, must learn from it exactly what this endpoint serves: per resource type the
// interactions, search parameters, _include/_revinclude values and operations that the policy
// lets through *and* the tier serving them supports. Each entry is decided by asking the
// policy about a request of that shape (classify, then decide: the same code every request
// goes through), so "listed" and "allowed" cannot drift apart; what the backends support comes
// from their own statements, fetched at start and again when a tier's members change. The
// statement is built once per change and served as a constant string.

import type { Interaction } from '../fhir/interaction';
import { classify } from '../fhir/classify';
import { R4_RESOURCE_TYPES } from '../fhir/r4-resource-types';
import { searchParamsOf, type SearchParamType } from '../fhir/search-parameters';
import type { Policy, TierConfig } from '../policy';
import { referenceSourcesOf } from '../policy/reference-graph';

type Json = Record<string, unknown>;

/** What fhirguard reads of a backend's statement for one resource type. */
interface BackendResource {
  interaction?: { code?: string }[];
  searchParam?: { name?: string; type?: string }[];
  searchInclude?: string[];
  searchRevInclude?: string[];
  operation?: { name?: string; definition?: string }[];
  [key: string]: unknown;
}

/** A backend's CapabilityStatement, as far as fhirguard reads it. */
export interface BackendStatement {
  rest?: { mode?: string; resource?: (BackendResource & { type?: string })[]; interaction?: { code?: string }[]; operation?: { name?: string; definition?: string }[] }[];
  patchFormat?: string[];
}

/** What one backend supports, indexed for the build. */
class BackendView {
  private readonly resources = new Map<string, BackendResource>();
  readonly system: ReadonlySet<string>;
  readonly systemOps: readonly { name: string; definition?: string }[];

  constructor(readonly statement: BackendStatement) {
    const rest = (statement.rest ?? []).find((r) => r.mode === undefined || r.mode === 'server');
    for (const r of rest?.resource ?? []) if (typeof r.type === 'string') this.resources.set(r.type, r);
    this.system = new Set((rest?.interaction ?? []).map((i) => String(i.code)));
    this.systemOps = (rest?.operation ?? []).filter((o) => typeof o.name === 'string') as { name: string; definition?: string }[];
  }

  resource(type: string): BackendResource | undefined {
    return this.resources.get(type);
  }
}

/** Example values that classify as a search on a parameter of each type (values are not validated here). */
const SAMPLE_VALUE: Readonly<Record<SearchParamType, string>> = {
  number: '1',
  date: '2020',
  string: 'x',
  token: 'x',
  reference: 'x',
  composite: 'x$x',
  quantity: '1',
  uri: 'http://example.org',
  special: 'x',
};

const TYPE_INTERACTIONS: readonly { code: string; method: string; path: (t: string) => string; body?: (t: string) => unknown }[] = [
  { code: 'read', method: 'GET', path: (t) => `/${t}/x` },
  { code: 'vread', method: 'GET', path: (t) => `/${t}/x/_history/1` },
  { code: 'update', method: 'PUT', path: (t) => `/${t}/x`, body: (t) => ({ resourceType: t, id: 'x' }) },
  { code: 'patch', method: 'PATCH', path: (t) => `/${t}/x`, body: () => [] },
  { code: 'delete', method: 'DELETE', path: (t) => `/${t}/x` },
  { code: 'history-instance', method: 'GET', path: (t) => `/${t}/x/_history` },
  { code: 'history-type', method: 'GET', path: (t) => `/${t}/_history` },
  { code: 'create', method: 'POST', path: (t) => `/${t}`, body: (t) => ({ resourceType: t }) },
  { code: 'search-type', method: 'GET', path: (t) => `/${t}` },
];

const SYSTEM_INTERACTIONS: readonly { code: string; method: string; path: string; body?: unknown }[] = [
  { code: 'transaction', method: 'POST', path: '', body: { resourceType: 'Bundle', type: 'transaction', entry: [] } },
  { code: 'batch', method: 'POST', path: '', body: { resourceType: 'Bundle', type: 'batch', entry: [] } },
  { code: 'history-system', method: 'GET', path: '/_history' },
  { code: 'search-system', method: 'GET', path: '' },
];

/**
 * Conditional and history flags, each taken from the backend of the tier serving the
 * interaction it qualifies, and kept only where that interaction is listed.
 */
function qualifiers(backendFor: (code: string) => BackendResource | undefined, listed: ReadonlySet<string>): Json {
  const out: Json = {};
  const read = backendFor('read') ?? backendFor('vread');
  if (listed.has('vread') && backendFor('vread')?.versioning !== undefined) out.versioning = backendFor('vread')?.versioning;
  if (listed.has('history-instance') || listed.has('vread')) out.readHistory = (backendFor('vread') ?? backendFor('history-instance'))?.readHistory === true;
  out.updateCreate = listed.has('update') && backendFor('update')?.updateCreate === true;
  out.conditionalCreate = listed.has('create') && backendFor('create')?.conditionalCreate === true;
  out.conditionalUpdate = listed.has('update') && backendFor('update')?.conditionalUpdate === true;
  const del = backendFor('delete')?.conditionalDelete;
  out.conditionalDelete = listed.has('delete') && typeof del === 'string' ? del : 'not-supported';
  if (read?.referencePolicy !== undefined) out.referencePolicy = read.referencePolicy;
  return out;
}

/**
 * Whether an `_include` (`type:param[:target]`) or `_revinclude` (`Source:param[:type]`) value
 * names a reference parameter the front door's search validation knows, pointing where it says.
 */
function isKnownInclude(value: string, type: string, kind: 'include' | 'revinclude'): boolean {
  const [source, code, target, ...rest] = value.split(':');
  if (rest.length > 0 || !source || !code || (kind === 'include' && source !== type)) return false;
  const def = searchParamsOf(source).get(code);
  if (def?.type !== 'reference') return false;
  const reaches = (t: string): boolean => def.targets.length === 0 || def.targets.includes(t);
  if (target !== undefined && !reaches(target)) return false;
  return kind === 'include' || (reaches(type) && (target === undefined || target === type));
}

export interface StatementInputs {
  policy: Policy;
  base: string;
  version: string;
  /** Each tier's backend statement; a tier missing here has not answered yet. */
  backends: ReadonlyMap<string, BackendStatement>;
  started: Date;
  /** With authorization: SMART on FHIR, and the issuer's endpoints once known. */
  security?: { authorize?: string; token?: string };
}

/** rest.security for SMART on FHIR (App Launch's oauth-uris extension carries the endpoints). */
function smartSecurity(s: NonNullable<StatementInputs['security']>): Json {
  const uris = [...(s.authorize ? [{ url: 'authorize', valueUri: s.authorize }] : []), ...(s.token ? [{ url: 'token', valueUri: s.token }] : [])];
  return {
    ...(uris.length > 0 ? { extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: uris }] } : {}),
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 using SMART-on-FHIR profile' }],
    description: 'Every request but this CapabilityStatement and .well-known/smart-configuration needs a bearer token from the issuer; its SMART scopes decide what it may read and write.',
  };
}

/** Builds the front door's statement: everything listed is something the policy and its tier's backend both allow. */
export function buildCapabilityStatement(o: StatementInputs): Json {
  const views = new Map<string, BackendView>();
  for (const [tier, st] of o.backends) views.set(tier, new BackendView(st));
  const unknownTiers = new Set<string>();

  /** The tier the policy sends a request of this shape to, or undefined when it refuses it. */
  const tierOf = (method: string, path: string, query = '', body?: unknown): TierConfig | undefined => {
    let interaction: Interaction;
    try {
      interaction = classify({ method, path, query, headers: { 'content-type': 'application/fhir+json' }, body, base: o.base });
      return o.policy.decide(interaction);
    } catch {
      return undefined;
    }
  };
  /** The backend view of a tier, or null when that tier's backend has not answered (then only the policy decides). */
  const viewOf = (tier: TierConfig): BackendView | null => {
    const v = views.get(tier.name);
    if (!v) unknownTiers.add(tier.name);
    return v ?? null;
  };

  const resources: Json[] = [];
  for (const type of R4_RESOURCE_TYPES) {
    const listed = new Set<string>();
    let searchTier: TierConfig | undefined;
    let searchView: BackendView | null = null;
    for (const it of TYPE_INTERACTIONS) {
      const tier = tierOf(it.method, it.path(type), '', it.body?.(type));
      if (!tier) continue;
      const view = viewOf(tier);
      const backend = view?.resource(type);
      if (view && !(backend?.interaction ?? []).some((i) => i.code === it.code)) continue;
      listed.add(it.code);
      if (it.code === 'search-type') {
        searchTier = tier;
        searchView = view;
      }
    }

    const entry: Json = { type, profile: `http://hl7.org/fhir/StructureDefinition/${type}` };
    if (listed.size > 0) entry.interaction = [...listed].sort().map((code) => ({ code }));

    if (searchTier) {
      const backend = searchView?.resource(type);
      const allowedAt = (query: string): boolean => tierOf('GET', `/${type}`, query) === searchTier;
      // Only parameters the front door's own search validation knows: a backend's custom
      // parameter would be refused here before it reached that backend.
      const known = searchParamsOf(type);
      const params = backend?.searchParam ?? [...known.values()].map((p) => ({ name: p.code, type: p.type }));
      entry.searchParam = params.filter(
        (p) => typeof p.name === 'string' && known.has(p.name) && allowedAt(`${encodeURIComponent(p.name)}=${encodeURIComponent(SAMPLE_VALUE[(p.type as SearchParamType) ?? 'string'] ?? 'x')}`),
      );
      const includes = backend?.searchInclude ?? [...searchParamsOf(type).values()].filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`);
      entry.searchInclude = includes.filter((v) => isKnownInclude(v, type, 'include') && allowedAt(`_include=${encodeURIComponent(v)}`));
      const revIncludes =
        backend?.searchRevInclude ??
        (searchView
          ? []
          : referenceSourcesOf(type).flatMap((source) => [...searchParamsOf(source).values()].filter((p) => p.type === 'reference' && p.targets.includes(type)).map((p) => `${source}:${p.code}`)));
      entry.searchRevInclude = revIncludes.filter((v) => isKnownInclude(v, type, 'revinclude') && allowedAt(`_revinclude=${encodeURIComponent(v)}`));
    }

    // Operations: those the type's backend names, each decided by the policy on its own.
    const operations: Json[] = [];
    const seen = new Set<string>();
    for (const tier of new Set([...o.policy.tiers])) {
      const view = views.get(tier.name);
      for (const op of view?.resource(type)?.operation ?? []) {
        if (typeof op.name !== 'string' || seen.has(op.name)) continue;
        if (tierOf('POST', `/${type}/$${op.name}`, '', { resourceType: 'Parameters' })?.name !== tier.name) continue;
        seen.add(op.name);
        operations.push({ name: op.name, ...(op.definition ? { definition: op.definition } : {}) });
      }
    }
    if (operations.length > 0) entry.operation = operations;
    if (listed.size === 0 && operations.length === 0) continue;

    const backendFor = (code: string): BackendResource | undefined => {
      if (!listed.has(code)) return undefined;
      const spec = TYPE_INTERACTIONS.find((i) => i.code === code)!;
      const t = tierOf(spec.method, spec.path(type), '', spec.body?.(type));
      return t ? views.get(t.name)?.resource(type) : undefined;
    };
    Object.assign(entry, qualifiers(backendFor, listed));
    resources.push(entry);
  }

  const system: Json[] = [];
  for (const it of SYSTEM_INTERACTIONS) {
    const tier = tierOf(it.method, it.path, it.code === 'search-system' ? '_id=x' : '', it.body);
    if (!tier) continue;
    const view = viewOf(tier);
    if (view && !view.system.has(it.code)) continue;
    system.push({ code: it.code });
  }
  const systemOps: Json[] = [];
  const seenSystem = new Set<string>();
  for (const tier of o.policy.tiers) {
    for (const op of views.get(tier.name)?.systemOps ?? []) {
      if (seenSystem.has(op.name) || tierOf('POST', `/$${op.name}`, '', { resourceType: 'Parameters' })?.name !== tier.name) continue;
      seenSystem.add(op.name);
      systemOps.push({ name: op.name, ...(op.definition ? { definition: op.definition } : {}) });
    }
  }

  const patchFormats = new Set<string>();
  if (resources.some((r) => (r.interaction as { code: string }[] | undefined)?.some((i) => i.code === 'patch'))) {
    for (const view of views.values()) for (const f of view.statement.patchFormat ?? []) patchFormats.add(f);
  }
  const pending = [...unknownTiers].sort();
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: o.started.toISOString(),
    publisher: 'fhirguard',
    kind: 'instance',
    software: { name: 'fhirguard', version: o.version },
    implementation: {
      description:
        'fhirguard FHIR front door: lists what its policy lets through and the tier serving it supports' +
        (pending.length > 0 ? `; the backends of tier(s) ${pending.join(', ')} have not answered yet, so for them this lists what the policy allows` : ''),
    },
    fhirVersion: '4.0.1',
    format: ['json'],
    ...(patchFormats.size > 0 ? { patchFormat: [...patchFormats].sort() } : {}),
    rest: [
      {
        mode: 'server',
        ...(o.security ? { security: smartSecurity(o.security) } : {}),
        resource: resources,
        ...(system.length > 0 ? { interaction: system } : {}),
        ...(systemOps.length > 0 ? { operation: systemOps } : {}),
      },
    ],
  };
}
