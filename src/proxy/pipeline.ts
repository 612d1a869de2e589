// The request path before forwarding, as one Fastify preHandler: classify → search
// parameters → policy → validate, each stage timed. It runs synchronously; any FhirError it
// throws becomes the OperationOutcome reply (see errors.ts) and nothing reaches an upstream.

import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { performance } from 'node:perf_hooks';
import { parseJsonBody, parseJsonPatchBody } from '../fhir/body';
import { classify } from '../fhir/classify';
import { checkRequestContentType, negotiateResponse } from '../fhir/content';
import { refuse } from '../fhir/outcome';
import { validateRequest, validateSearch } from '../fhir/validate';
import { checkPatientBody } from '../auth/patient-access';
import { patientsOf } from './audit-record';
import { connectionCertificate, ruleSubject } from './client-certificates';
import { authorizeRequest, refuseTokenInQuery } from './authorize';
import type { ProxyMetrics } from '../metrics/registry';
import type { Policy } from '../policy/types';
import { forwardQuery } from './forward-query';
import { requestState } from './request-state';
import { httpRefusal } from './errors';
import { checkRequestHead } from './request-head';

export interface PipelineOptions {
  /** The FHIR base path, e.g. '/fhir'. */
  base: string;
  policy: Policy;
  metrics: ProxyMetrics;
  /** Deepest JSON nesting accepted in a body. */
  maxDepth: number;
  /** The front door audits: each request's patients are noted while its body is at hand. */
  audit?: boolean;
}

const FORM = 'application/x-www-form-urlencoded';
const JSON_PATCH = 'application/json-patch+json';
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `application/fhir+json; charset=utf-8` → `application/fhir+json`. */
export function mediaType(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const semi = header.indexOf(';');
  return (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
}

function isJson(type: string | undefined): boolean {
  return type !== undefined && (type === 'application/json' || type.endsWith('+json') || type === 'text/json');
}

/** `_format` from a raw query string, when present (rare, so not parsed otherwise). */
function formatParam(query: string): string | undefined {
  if (!query.includes('_format=')) return undefined;
  return new URLSearchParams(query).get('_format') ?? undefined;
}

export function createPipeline(opts: PipelineOptions) {
  const { base, policy, metrics, maxDepth } = opts;
  const audit = opts.audit === true;
  const classifyStage = metrics.stage('classify');
  const policyStage = metrics.stage('policy');
  const validateStage = metrics.stage('validate');

  return function pipeline(request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const state = requestState(request);
    try {
      const t0 = performance.now();
      const url = request.url;
      // The router matched the decoded path; the pipeline works on the raw one, which must
      // start with the base spelled exactly (so '/%66hir/...' cannot dodge anything).
      if (!url.startsWith(base) || (url.length > base.length && url[base.length] !== '/' && url[base.length] !== '?')) {
        throw refuse(400, 'bad-url', 'invalid', `the request path must start with the FHIR base '${base}'`);
      }
      const q = url.indexOf('?', base.length);
      const path = q < 0 ? url.slice(base.length) : url.slice(base.length, q);
      const query = q < 0 ? '' : url.slice(q + 1);

      const headers = request.headers;
      // HTTP version, Host, header count and Content-Encoding, which Node leaves to the server.
      checkRequestHead(request.raw, headers);
      const contentType = mediaType(headers['content-type']);
      let body: unknown;
      let form: string | undefined;
      const raw = request.body;
      if (Buffer.isBuffer(raw) && raw.length > 0) {
        state.rawBody = raw;
        if (contentType === JSON_PATCH) body = parseJsonPatchBody(raw, { maxDepth });
        else if (isJson(contentType)) body = parseJsonBody(raw, { maxDepth });
        else if (contentType === FORM) form = decodeForm(raw);
      }
      const interaction = classify({ method: request.method, path, query, headers, body, form, base });
      state.interaction = interaction;
      if (audit) state.auditPatients = patientsOf(interaction, state, body);
      // `_method` overrides the HTTP method on servers that honour it: the interaction decided
      // here is the one the server must run.
      for (const p of interaction.params) {
        if (p.name === '_method') throw httpRefusal.methodOverride();
      }
      // The whole header: its charset and fhirVersion parameters are checked too.
      checkRequestContentType(request.method, headers['content-type'], interaction, state.rawBody !== undefined);
      negotiateResponse(headers.accept, formatParam(query));
      const t1 = performance.now();
      classifyStage.observe((t1 - t0) / 1000);

      // Search parameters before the policy: an unknown one is the client's error (400), not a
      // reach the policy cannot bound, and what lenient handling drops is neither decided on
      // nor forwarded. Its time counts to the validate stage.
      if (policy.authorization) refuseTokenInQuery(interaction);
      const search = validateSearch(interaction, isLenient(headers.prefer));
      state.forwardQuery = forwardQuery(query, search.droppedParams);
      const t2 = performance.now();

      // Who asks, before what the policy lets through: a request without a good token learns
      // nothing about what the policy would do with it.
      if (policy.authorization) authorizeRequest(interaction, state);
      const tier = policy.decide(interaction, ruleSubject(state.identity, connectionCertificate(request.raw.socket)));
      state.tier = tier;
      const t3 = performance.now();
      policyStage.observe((t3 - t2) / 1000);

      validateRequest(interaction, body);
      if (state.access?.patient !== undefined) checkPatientBody(interaction, body, state.access.patient);
      validateStage.observe((t2 - t1 + performance.now() - t3) / 1000);
      done();
    } catch (err) {
      done(err as Error);
    }
  };
}

/** `Prefer: handling=lenient` (RFC 7240 preference; strict is the default). */
function isLenient(prefer: string | string[] | undefined): boolean {
  if (prefer === undefined) return false;
  const text = Array.isArray(prefer) ? prefer.join(',') : prefer;
  return /(?:^|[,;\s])handling\s*=\s*"?lenient"?/i.test(text);
}

function decodeForm(raw: Buffer): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw refuse(400, 'invalid-utf8', 'invalid', 'the form body is not valid UTF-8');
  }
}
