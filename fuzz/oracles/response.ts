// What every answer a client gets must satisfy. The upstreams are always healthy and mark
// their answers with X-Served-By, so: no 500 at all, no 502/503/504 (nothing upstream
// failed), and every non-2xx the proxy answers itself is a FHIR OperationOutcome with a
// diagnostic and an X-Request-Id.

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** HEAD answers carry no body. */
  head: boolean;
}

export interface ResponseViolation {
  oracle: string;
  detail: string;
}

function header(a: Answer, name: string): string | undefined {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function checkAnswer(a: Answer): ResponseViolation[] {
  const out: ResponseViolation[] = [];
  if (a.status === 500) out.push({ oracle: 'no-500', detail: `500: ${a.body.slice(0, 300)}` });
  if (a.status === 502 || a.status === 503 || a.status === 504) out.push({ oracle: 'no-gateway-error', detail: `${a.status} while every upstream is healthy: ${a.body.slice(0, 300)}` });
  const fromUpstream = header(a, 'x-served-by') !== undefined;
  if (fromUpstream || (a.status >= 100 && a.status < 300)) return out;
  if (!header(a, 'x-request-id')) out.push({ oracle: 'refusal-is-outcome', detail: `${a.status} without X-Request-Id` });
  if (a.head) return out;
  let doc: { resourceType?: unknown; issue?: { diagnostics?: unknown }[] } | undefined;
  try {
    doc = JSON.parse(a.body) as typeof doc;
  } catch {
    out.push({ oracle: 'refusal-is-outcome', detail: `${a.status} with a body that is not JSON: ${JSON.stringify(a.body.slice(0, 200))}` });
    return out;
  }
  if (doc?.resourceType !== 'OperationOutcome') out.push({ oracle: 'refusal-is-outcome', detail: `${a.status} with ${a.body.slice(0, 200)}` });
  else if (!Array.isArray(doc.issue) || !doc.issue.some((i) => typeof i?.diagnostics === 'string' && i.diagnostics.length > 0)) {
    out.push({ oracle: 'refusal-is-outcome', detail: `${a.status} OperationOutcome without a diagnostic: ${a.body.slice(0, 200)}` });
  }
  return out;
}
