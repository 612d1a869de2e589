// Sending AuditEvents to a FHIR server, over undici: a `batch` Bundle POSTed to the base, or
// one POST per event to `<base>/AuditEvent`. A delivery is acknowledged when the server took
// every event (2xx), or judged one invalid (400, 422: sending it again cannot help; the event
// stays in the trail and is counted). Anything else (a network error, a timeout, another
// status, a batch-response that does not answer every entry) fails the whole delivery, which
// the sink then sends again: at least once.

import { request, type Dispatcher } from 'undici';
import type { AuditEvent } from './audit-event';
import type { AttemptFailure } from './sink-metrics';

export type SinkMode = 'batch' | 'each';

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly reason: AttemptFailure,
  ) {
    super(message);
  }
}

export interface DeliveryTarget {
  /** The FHIR base URL, without a trailing slash. */
  base: string;
  headers: Record<string, string>;
  timeoutMs: number;
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
}

/** What the server made of each event sent: accepted, or refused as invalid with its reason. */
export type Verdict = { ok: true } | { ok: false; status: number; why: string };

const INVALID = new Set([400, 422]);

async function post(t: DeliveryTarget, url: string, body: unknown): Promise<{ status: number; text: string }> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...t.headers },
      body: JSON.stringify(body),
      headersTimeout: t.timeoutMs,
      bodyTimeout: t.timeoutMs,
      ...(t.dispatcher ? { dispatcher: t.dispatcher } : {}),
      ...(t.signal ? { signal: t.signal } : {}),
    });
  } catch (err) {
    throw new DeliveryError(`POST ${url}: ${(err as Error).message}`, 'network');
  }
  try {
    return { status: res.statusCode, text: await res.body.text() };
  } catch (err) {
    throw new DeliveryError(`POST ${url}: reading the response: ${(err as Error).message}`, 'network');
  }
}

function diagnostics(outcome: unknown): string {
  const issues = (outcome as { issue?: { diagnostics?: unknown }[] } | undefined)?.issue;
  const said = Array.isArray(issues) ? issues.map((i) => i?.diagnostics).filter((d): d is string => typeof d === 'string') : [];
  return said.join('; ').slice(0, 500);
}

function verdictOf(status: number, outcome: unknown, where: string): Verdict {
  if (status >= 200 && status < 300) return { ok: true };
  if (INVALID.has(status)) return { ok: false, status, why: diagnostics(outcome) };
  throw new DeliveryError(`${where} answered ${status}`, 'status');
}

function json(text: string, where: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new DeliveryError(`${where} answered with a body that is not JSON`, 'response');
  }
}

/** Sends `events` as one batch Bundle; one verdict per event, in order. */
export async function deliverBatch(t: DeliveryTarget, events: readonly AuditEvent[]): Promise<Verdict[]> {
  const bundle = { resourceType: 'Bundle', type: 'batch', entry: events.map((resource) => ({ resource, request: { method: 'POST', url: 'AuditEvent' } })) };
  const where = `POST ${t.base}`;
  const res = await post(t, t.base, bundle);
  if (res.status < 200 || res.status >= 300) throw new DeliveryError(`${where} answered ${res.status}`, 'status');
  const reply = json(res.text, where) as { resourceType?: unknown; type?: unknown; entry?: { response?: { status?: unknown; outcome?: unknown } }[] } | undefined;
  if (reply?.resourceType !== 'Bundle' || reply.type !== 'batch-response' || !Array.isArray(reply.entry) || reply.entry.length !== events.length) {
    throw new DeliveryError(`${where} did not answer with a batch-response of ${events.length} entries`, 'response');
  }
  return reply.entry.map((e, i) => {
    const status = Number.parseInt(String(e?.response?.status ?? ''), 10);
    if (!Number.isInteger(status)) throw new DeliveryError(`${where}: entry ${i} has no response status`, 'response');
    return verdictOf(status, e.response?.outcome, `${where} entry ${i}`);
  });
}

/** The OperationOutcome a refusal may carry, if its body is JSON. */
function outcomeIn(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Sends one event to `<base>/AuditEvent`. */
export async function deliverOne(t: DeliveryTarget, event: AuditEvent): Promise<Verdict> {
  const url = `${t.base}/AuditEvent`;
  const res = await post(t, url, event);
  return verdictOf(res.status, outcomeIn(res.text), `POST ${url}`);
}
