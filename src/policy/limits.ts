// The `limits:` block: how many requests the front door takes, in all and per client, before
// it answers 429 (src/proxy/limits.ts applies them). A rate is a token bucket: `rate` requests
// a second on average, up to `burst` at once. `concurrency` bounds requests in flight. A
// client is the verified token's client id, else the client's IP address; `clients` gives
// named OAuth clients (a bulk export app, an integration engine) limits of their own.
//
//   limits:
//     global:    { rate: 2000, burst: 4000, concurrency: 512 }
//     perClient: { rate: 50, burst: 100, concurrency: 16 }
//     clients:
//       - { client: bulk-export, rate: 500, burst: 1000, concurrency: 64 }

import type { Field, ObjectSpec } from './yaml-check';
import type { SourcePositions } from './yaml-check';

export interface Limit {
  /** Requests a second, on average (absent: no rate limit). */
  rate?: number;
  /** Requests at once above the average (default: one second's worth of rate). */
  burst?: number;
  /** Requests in flight at once (absent: no bound). */
  concurrency?: number;
}

export interface LimitsFields {
  global?: Limit;
  perClient?: Limit;
  clients?: (Limit & { client: string })[];
}

export interface LimitsConfig {
  global: Limit;
  perClient: Limit;
  /** By OAuth client id. */
  clients: ReadonlyMap<string, Limit>;
}

const LIMIT_FIELDS = {
  rate: { spec: { type: 'integer', min: 1, max: 10_000_000 }, doc: 'requests a second on average' },
  burst: { spec: { type: 'integer', min: 1, max: 10_000_000 }, doc: 'requests at once above the average (default: rate)' },
  concurrency: { spec: { type: 'integer', min: 1, max: 1_000_000 }, doc: 'requests in flight at once' },
} satisfies Record<string, Field>;

const LIMIT: ObjectSpec = { type: 'object', fields: LIMIT_FIELDS };

export const LIMITS_FIELD: Field = {
  spec: {
    type: 'object',
    fields: {
      global: { spec: LIMIT, doc: 'all requests together' },
      perClient: { spec: LIMIT, doc: "each client (the token's client id, else the IP address)" },
      clients: {
        spec: { type: 'list', items: { type: 'object', fields: { client: { spec: { type: 'string' }, required: true, doc: 'an OAuth client id' }, ...LIMIT_FIELDS } } },
        doc: 'named OAuth clients with limits of their own, in place of perClient',
      },
    },
  },
  doc: 'request rate and concurrency limits, answered with 429 and Retry-After (docs/http.md)',
};

function withBurst(l: Limit | undefined): Limit {
  if (!l) return {};
  return { ...l, ...(l.rate !== undefined ? { burst: l.burst ?? l.rate } : {}) };
}

export function compileLimits(fields: LimitsFields | undefined, at: SourcePositions): LimitsConfig {
  const clients = new Map<string, Limit>();
  (fields?.clients ?? []).forEach((c, k) => {
    if (clients.has(c.client)) at.report(`limits.clients[${k}].client`, `client '${c.client}' is listed twice`);
    const { client, ...limit } = c;
    clients.set(client, withBurst(limit));
  });
  return { global: withBurst(fields?.global), perClient: withBurst(fields?.perClient), clients };
}
