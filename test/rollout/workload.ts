// A sustained mixed FHIR workload through the real proxy, for rollout tests: several clients
// in parallel, each creating, updating, reading and searching its own Patients and posting
// transactions, every request checked. It keeps every acknowledged write (id, versionId,
// content) so a test can read each one back afterwards.

import { Agent, fetch } from 'undici';

export interface AckedWrite {
  id: string;
  versionId: string;
  family: string;
  via: 'create' | 'update' | 'transaction';
}

export interface Failure {
  op: string;
  status?: number;
  error?: string;
  at: number;
}

export interface Workload {
  /** Requests answered as expected so far, by operation. */
  done: Record<string, number>;
  failures: Failure[];
  acked: AckedWrite[];
  total(): number;
  stop(): Promise<void>;
}

const FHIR_JSON = 'application/fhir+json';

/** `Patient/<id>/_history/<vid>` (possibly absolute) → [id, vid]. */
function fromLocation(loc: string | null | undefined): [string, string] | null {
  const m = /Patient\/([A-Za-z0-9\-.]{1,64})\/_history\/([A-Za-z0-9\-.]{1,64})/.exec(loc ?? '');
  return m ? [m[1], m[2]] : null;
}

export function startWorkload(fhirUrl: string, clients = 3): Workload {
  // Keep-alive connections, as real clients have: the proxy's side is what a rollout tests.
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: clients * 2 });
  const done: Record<string, number> = {};
  const failures: Failure[] = [];
  const acked: AckedWrite[] = [];
  let stopping = false;
  let seq = 0;

  async function call(op: string, method: string, path: string, body: unknown, ok: number[]): Promise<{ status: number; json: any; headers: Headers } | null> {
    try {
      const res = await fetch(`${fhirUrl}${path}`, {
        method,
        dispatcher,
        headers: { accept: FHIR_JSON, ...(body ? { 'content-type': FHIR_JSON } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      if (!ok.includes(res.status)) {
        failures.push({ op, status: res.status, error: text.slice(0, 300), at: Date.now() });
        return null;
      }
      done[op] = (done[op] ?? 0) + 1;
      return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers as unknown as Headers };
    } catch (err) {
      failures.push({ op, error: String((err as Error & { cause?: unknown }).cause ?? err), at: Date.now() });
      return null;
    }
  }

  async function client(n: number): Promise<void> {
    const mine: { id: string; family: string }[] = [];
    let i = 0;
    while (!stopping) {
      const tag = `Roll${n}x${++seq}`;
      switch (i++ % 6) {
        case 0: {
          const r = await call('create', 'POST', '/Patient', { resourceType: 'Patient', name: [{ family: tag }] }, [201]);
          const loc = fromLocation(r?.headers.get('location'));
          if (r && loc && r.json?.meta?.versionId === loc[1]) {
            acked.push({ id: loc[0], versionId: loc[1], family: tag, via: 'create' });
            mine.push({ id: loc[0], family: tag });
          } else if (r) failures.push({ op: 'create', status: r.status, error: `no Location/versionId: ${r.headers.get('location')}`, at: Date.now() });
          break;
        }
        case 1: {
          const p = mine[mine.length - 1];
          if (!p) break;
          const r = await call('update', 'PUT', `/Patient/${p.id}`, { resourceType: 'Patient', id: p.id, name: [{ family: tag }] }, [200]);
          const vid = r?.json?.meta?.versionId as string | undefined;
          if (r && vid) {
            acked.push({ id: p.id, versionId: vid, family: tag, via: 'update' });
            p.family = tag;
          } else if (r) failures.push({ op: 'update', status: r.status, error: 'no versionId', at: Date.now() });
          break;
        }
        case 2: {
          const p = mine[Math.floor(Math.random() * mine.length)];
          if (p) await call('read', 'GET', `/Patient/${p.id}`, null, [200]);
          break;
        }
        case 3: {
          const p = mine[mine.length - 1];
          await call('search', 'GET', `/Patient?family=${p?.family ?? 'Nobody'}&_count=5`, null, [200]);
          break;
        }
        case 4: {
          const bundle = {
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: { resourceType: 'Patient', name: [{ family: tag }] }, request: { method: 'POST', url: 'Patient' } }],
          };
          const r = await call('transaction', 'POST', '', bundle, [200]);
          const loc = fromLocation(r?.json?.entry?.[0]?.response?.location);
          if (r && loc) acked.push({ id: loc[0], versionId: loc[1], family: tag, via: 'transaction' });
          else if (r) failures.push({ op: 'transaction', status: r.status, error: 'no entry location', at: Date.now() });
          break;
        }
        default:
          await call('metadata', 'GET', '/metadata', null, [200]);
      }
    }
  }

  const loops = Array.from({ length: clients }, (_, n) => client(n));
  return {
    done,
    failures,
    acked,
    total: () => Object.values(done).reduce((a, b) => a + b, 0),
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
      await dispatcher.close();
    },
  };
}

/**
 * Reads every acknowledged write back: each version by vread with the content written, and
 * each resource's current version is the last one acknowledged. Returns what does not match.
 */
export async function unreadableWrites(fhirUrl: string, acked: AckedWrite[]): Promise<string[]> {
  const dispatcher = new Agent({ connections: 4 });
  const bad: string[] = [];
  const last = new Map<string, AckedWrite>();
  for (const w of acked) last.set(w.id, w);
  const get = async (path: string): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${fhirUrl}${path}`, { dispatcher, headers: { accept: FHIR_JSON } });
    return { status: res.status, json: await res.json() };
  };
  const queue = [...acked];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let w = queue.shift(); w; w = queue.shift()) {
        const v = await get(`/Patient/${w.id}/_history/${w.versionId}`);
        if (v.status !== 200 || v.json?.name?.[0]?.family !== w.family) bad.push(`${w.via} Patient/${w.id}/_history/${w.versionId}: ${v.status} ${JSON.stringify(v.json?.name)}`);
      }
    }),
  );
  for (const w of last.values()) {
    const r = await get(`/Patient/${w.id}`);
    if (r.status !== 200 || r.json?.meta?.versionId !== w.versionId || r.json?.name?.[0]?.family !== w.family) {
      bad.push(`current Patient/${w.id}: ${r.status} version ${r.json?.meta?.versionId} (acknowledged ${w.versionId})`);
    }
  }
  await dispatcher.close();
  return bad;
}

/** How many Patients the server holds (a search with _summary=count). */
export async function patientCount(fhirUrl: string): Promise<number> {
  const res = await fetch(`${fhirUrl}/Patient?_summary=count`, { headers: { accept: FHIR_JSON } });
  const body = (await res.json()) as { total?: number };
  if (res.status !== 200 || typeof body.total !== 'number') throw new Error(`counting Patients: ${res.status} ${JSON.stringify(body)}`);
  return body.total;
}

/**
 * Runs `fn` (a rollout) under a workload of `clients` started a second before, stops the
 * workload half a second after, and checks it: no failed request, every acknowledged write
 * readable, and no write applied twice (the server holds exactly as many new Patients as
 * creates were acknowledged; an update applied twice would show as a later current version).
 * Resolves with fn's result and the workload.
 */
export async function underLoad<T>(fhirUrl: string, clients: number, fn: (w: Workload) => Promise<T>): Promise<{ result: T; workload: Workload }> {
  const before = await patientCount(fhirUrl);
  const w = startWorkload(fhirUrl, clients);
  let result: T;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    result = await fn(w);
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await w.stop();
  }
  expect(w.failures).toEqual([]);
  expect(w.done.create).toBeGreaterThan(0);
  expect(await unreadableWrites(fhirUrl, w.acked)).toEqual([]);
  expect((await patientCount(fhirUrl)) - before).toBe(w.acked.filter((a) => a.via !== 'update').length);
  return { result, workload: w };
}
