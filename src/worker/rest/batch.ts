// batch and transaction (POST of a Bundle to the root). Each entry is an ordinary request
// handed to the same dispatcher as HTTP requests. A batch runs entries independently, each
// in its own transaction; a transaction runs all of them in one SQLite transaction, in the
// R4 order (DELETE, POST, PUT/PATCH, GET), after resolving every fullUrl and conditional
// reference, and any failing entry rolls back the whole of it.

import { randomUUID } from 'node:crypto';
import { FhirError, refuse } from '../../fhir/outcome';
import { parseLocalReference } from '../indexing/references';
import { conditionalMatches } from '../search/run';
import type { Json } from '../storage/store';
import type { FhirRequest, FhirResponse, WorkerContext } from './handler-context';
import { bundleJson, type Dispatch, type Entry, entryFailure, entryJson, entryRequest, errorOf, parseEntry, runEntry } from './batch-entries';
import { rewriteReferences, rewriteText, type ConditionalResolver } from './transaction-references';

/** R4 transaction processing order, by an entry's method (from the request body: a Map). */
const ORDER: ReadonlyMap<string, number> = new Map([
  ['DELETE', 0],
  ['POST', 1],
  ['PUT', 2],
  ['PATCH', 2],
  ['GET', 3],
  ['HEAD', 3],
]);
const orderOf = (method: string): number => ORDER.get(method) ?? 3;

function processBatch(w: WorkerContext, req: FhirRequest, raw: unknown[], dispatch: Dispatch): FhirResponse {
  const out = raw.map((item, index) => {
    let res: FhirResponse;
    try {
      res = runEntry(w, entryRequest(req, parseEntry(item, index, req.base)), dispatch);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      res = { status: err.status, body: JSON.stringify(err.toOutcome()) };
    }
    return entryJson(res);
  });
  return { status: 200, body: bundleJson('batch-response', out) };
}

/** One transaction's processing state: identities assigned, references to rewrite, results. */
class TransactionRun {
  /** fullUrl → the `Type/id` it resolved to. */
  private readonly map = new Map<string, string>();
  /** `Type/id` → the entry that changes it (two entries may not change one resource). */
  private readonly touched = new Map<string, number>();
  /** POST entries: the id they create, or the existing resource If-None-Exist matched. */
  private readonly identity = new Map<Entry, { id: string; existing: boolean }>();
  private readonly results: string[];

  constructor(
    private readonly w: WorkerContext,
    private readonly req: FhirRequest,
    private readonly dispatch: Dispatch,
    private readonly entries: Entry[],
  ) {
    this.results = new Array<string>(entries.length);
  }

  private touch(ref: string, e: Entry): void {
    const other = this.touched.get(ref);
    if (other !== undefined) {
      const [a, b] = [other, e.index].sort((x, y) => x - y);
      throw refuse(400, 'bad-bundle', 'invalid', `Bundle.entry[${a}] and Bundle.entry[${b}] both change ${ref}`);
    }
    this.touched.set(ref, e.index);
  }

  private run(e: Entry, assignedId?: string): FhirResponse {
    const res = runEntry(this.w, entryRequest(this.req, e, assignedId), this.dispatch);
    if (res.status >= 400) throw errorOf(res, e);
    return res;
  }

  /** Exactly one match of a conditional, or the entry fails (412 for several). */
  private atMostOne(e: Entry, type: string, query: [string, string][], what: string): string | undefined {
    const rows = conditionalMatches(this.w.store, type, query);
    if (rows.length > 1) throw entryFailure(e, refuse(412, 'multiple-matches', 'multiple-matches', `${what} matches more than one ${type}`));
    return rows[0]?.id;
  }

  private postIdentity(e: Entry): void {
    const type = e.path;
    const ifNoneExist = e.headers['if-none-exist'];
    const query = ifNoneExist === undefined ? undefined : [...new URLSearchParams(rewriteText(String(ifNoneExist), this.map).replace(/^[^?]*\?/, ''))];
    const found = query && this.atMostOne(e, type, query, 'If-None-Exist');
    const id = found ?? randomUUID();
    this.identity.set(e, { id, existing: found !== undefined });
    if (found === undefined) this.touch(`${type}/${id}`, e);
    if (e.fullUrl) this.map.set(e.fullUrl, `${type}/${id}`);
  }

  /** A conditional update is resolved here and then runs as an update of that id. */
  private putIdentity(e: Entry): void {
    if (e.query.length) {
      const type = e.path;
      const query = e.query.map(([k, v]) => [k, rewriteText(v, this.map)] as [string, string]);
      const found = this.atMostOne(e, type, query, 'the criteria');
      const resource = e.body as Json | undefined;
      const bodyId = typeof resource?.id === 'string' ? resource.id : undefined;
      if (found !== undefined && bodyId !== undefined && bodyId !== found) {
        throw entryFailure(e, refuse(400, 'id-mismatch', 'invalid', `body id '${bodyId}' is not the id of the matching ${type} (${found})`));
      }
      const id = found ?? bodyId ?? randomUUID();
      e.path = `${type}/${id}`;
      e.query = [];
      if (resource) resource.id = id;
    } else if (!parseLocalReference(e.path)) {
      return; // not a resource URL: the dispatcher refuses it when the entry runs
    }
    this.touch(e.path, e);
    if (e.fullUrl) this.map.set(e.fullUrl, e.path);
  }

  private rewrite(e: Entry): void {
    const resolve: ConditionalResolver = (type, query) => {
      const id = this.atMostOne(e, type, query, `the conditional reference ${type}?${new URLSearchParams(query)}`);
      if (id === undefined) throw refuse(404, 'not-found', 'not-found', `the conditional reference ${type}?${new URLSearchParams(query)} matches no resource`);
      return id;
    };
    try {
      if (e.body) rewriteReferences(e.body, this.map, resolve, `Bundle.entry[${e.index}]`);
    } catch (err) {
      throw err instanceof FhirError && !err.message.startsWith('Bundle.entry[') ? entryFailure(e, err) : err;
    }
    e.query = e.query.map(([k, v]) => [k, rewriteText(v, this.map)]);
    if (e.headers['if-none-exist']) e.headers['if-none-exist'] = rewriteText(String(e.headers['if-none-exist']), this.map);
  }

  /** Runs the transaction's steps; the caller holds the SQLite transaction. */
  process(): FhirResponse {
    const ordered = [...this.entries].sort((a, b) => orderOf(a.method) - orderOf(b.method) || a.index - b.index);
    // 1. Deletes (conditional ones resolve against the database as it was).
    for (const e of ordered.filter((e) => e.method === 'DELETE')) {
      if (!e.query.length) this.touch(e.path, e);
      this.results[e.index] = entryJson(this.run(e));
    }
    // 2. The identity of every created or updated resource, so references can be rewritten.
    for (const e of ordered) {
      if (e.method === 'POST' && !e.path.includes('/')) this.postIdentity(e);
      else if (e.method === 'PUT') this.putIdentity(e);
      else if (e.method === 'PATCH' && !e.query.length) this.touch(e.path, e);
    }
    // 3. Every fullUrl and conditional reference becomes the literal Type/id.
    for (const e of this.entries) this.rewrite(e);
    // 4. Creates, updates and patches, then reads.
    for (const e of ordered) {
      if (e.method === 'DELETE') continue;
      const id = this.identity.get(e);
      if (id?.existing) {
        // If-None-Exist matched: nothing is created; the response names the existing resource.
        const found = this.w.store.current(e.path, id.id)!;
        const v = { type: e.path, id: id.id, version: found.version, lastUpdated: found.lastUpdated };
        this.results[e.index] = entryJson({ status: 200, version: v }, `${this.req.base}/${e.path}/${id.id}/_history/${found.version}`);
        continue;
      }
      if (id) delete e.headers['if-none-exist'];
      this.results[e.index] = entryJson(this.run(e, id?.id));
    }
    return { status: 200, body: bundleJson('transaction-response', this.results) };
  }
}

function processTransaction(w: WorkerContext, req: FhirRequest, raw: unknown[], dispatch: Dispatch): FhirResponse {
  const entries = raw.map((item, index) => parseEntry(item, index, req.base));
  return w.store.transaction(() => new TransactionRun(w, req, dispatch, entries).process());
}

export function processBundle(w: WorkerContext, req: FhirRequest, dispatch: Dispatch): FhirResponse {
  const bundle = req.body as Json | undefined;
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle) || bundle.resourceType !== 'Bundle') {
    throw refuse(400, 'bad-bundle', 'invalid', 'POST to the system endpoint takes a Bundle of type batch or transaction');
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw refuse(400, 'bad-bundle', 'invalid', `Bundle.type '${String(bundle.type)}' cannot be processed; only batch and transaction can`, ['Bundle.type']);
  }
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw refuse(400, 'bad-bundle', 'invalid', 'Bundle.entry must be an array', ['Bundle.entry']);
  const raw = (bundle.entry as unknown[] | undefined) ?? [];
  return bundle.type === 'batch' ? processBatch(w, req, raw, dispatch) : processTransaction(w, req, raw, dispatch);
}
