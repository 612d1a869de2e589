// A stand-in for the Kubernetes API server, for the node agent's tests. Kubernetes cannot run
// on this machine (no kubelet, no cluster, no way to get one), so this is the one fake of those
// tests: a real HTTPS server on loopback, with its own CA (openssl), that answers what the agent
// asks in the API server's shapes: GET /api/v1/namespaces/<ns>/pods with labelSelector and
// fieldSelector (list, pages of PodList with a resourceVersion) and the same with watch=1 (a
// chunked stream of {"type", "object"} lines from a resourceVersion, bookmarks, an ERROR event
// with a 410 Status once the version is too old). It checks the bearer token. Everything else
// the agent does (eBPF, cgroups, processes) is real.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Pod } from '../../src/agent/kube/pods';

export interface RecordedRequest {
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
}

interface Watcher {
  res: ServerResponse;
  matches(pod: Pod): boolean;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** A CA and a server certificate for 127.0.0.1, made with openssl. */
function certificates(dir: string): { ca: string; key: string; cert: string } {
  const f = (n: string): string => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=fhirguard-test-kubernetes-ca'], { stdio: 'pipe' });
  execFileSync('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=kube-apiserver'], { stdio: 'pipe' });
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  execFileSync('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('san.ext')], {
    stdio: 'pipe',
  });
  return { ca: readFileSync(f('ca.crt'), 'utf8'), key: readFileSync(f('server.key'), 'utf8'), cert: readFileSync(f('server.crt'), 'utf8') };
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }));
}

/** label selectors of the forms `key`, `key=value`, comma-separated (all the agent sends). */
function labelMatcher(selector: string): (labels: Record<string, string>) => boolean {
  const terms = selector
    .split(',')
    .filter(Boolean)
    .map((t) => t.split('='));
  return (labels) => terms.every(([k, v]) => (v === undefined ? k in labels : labels[k] === v));
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  /** The service account directory a pod would have (token, ca.crt, namespace). */
  readonly serviceAccountDir: string;
  private readonly pods = new Map<string, Pod>();
  private readonly history: { rv: number; type: EventType; pod: Pod }[] = [];
  private readonly watchers = new Set<Watcher>();
  private rv = 100;
  /** Watches from a version at or below this get 410 Gone. */
  private compactedTo = 0;
  private server!: https.Server;
  port = 0;

  private constructor(
    dir: string,
    readonly token: string,
  ) {
    this.serviceAccountDir = path.join(dir, 'serviceaccount');
  }

  static async start(dir: string, token = 'fhirguard-test-token'): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(dir, token);
    mkdirSync(api.serviceAccountDir, { recursive: true });
    const tls = certificates(dir);
    writeFileSync(path.join(api.serviceAccountDir, 'ca.crt'), tls.ca);
    writeFileSync(path.join(api.serviceAccountDir, 'token'), token);
    writeFileSync(path.join(api.serviceAccountDir, 'namespace'), 'fhirguard-system');
    api.server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => api.handle(req, res));
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', () => resolve()));
    api.port = (api.server.address() as AddressInfo).port;
    return api;
  }

  /** The environment Kubernetes gives a pod, pointing here. */
  get env(): Record<string, string> {
    return { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.port) };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({ path: url.pathname, query, authorization: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${this.token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    if (req.method !== 'GET' || !m) return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const namespace = m[1];
    const labels = labelMatcher(query.labelSelector ?? '');
    const node = /^spec\.nodeName=(.*)$/.exec(query.fieldSelector ?? '')?.[1];
    const matches = (p: Pod): boolean => p.metadata.namespace === namespace && labels(p.metadata.labels ?? {}) && (node === undefined || p.spec.nodeName === node);
    if (query.watch === '1' || query.watch === 'true') return this.watch(res, matches, Number(query.resourceVersion ?? 0), Number(query.timeoutSeconds ?? 0));
    const items = [...this.pods.values()].filter(matches);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items }));
  }

  private watch(res: ServerResponse, matches: (p: Pod) => boolean, from: number, timeoutSeconds: number): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    if (from <= this.compactedTo) {
      res.end(
        JSON.stringify({
          type: 'ERROR',
          object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', message: `too old resource version: ${from} (${this.compactedTo})`, code: 410 },
        }) + '\n',
      );
      return;
    }
    for (const e of this.history) if (e.rv > from && matches(e.pod)) res.write(JSON.stringify({ type: e.type, object: e.pod }) + '\n');
    const w: Watcher = { res, matches };
    this.watchers.add(w);
    const end = (): void => {
      this.watchers.delete(w);
      res.end();
    };
    if (timeoutSeconds > 0) setTimeout(end, timeoutSeconds * 1000).unref();
    res.once('close', () => this.watchers.delete(w));
  }

  private emit(type: EventType, pod: Pod): void {
    const rv = ++this.rv;
    const stamped: Pod = { ...pod, metadata: { ...pod.metadata, resourceVersion: String(rv) } };
    const before = this.pods.get(pod.metadata.uid);
    if (type === 'DELETED') this.pods.delete(pod.metadata.uid);
    else this.pods.set(pod.metadata.uid, stamped);
    this.history.push({ rv, type, pod: stamped });
    for (const w of this.watchers) {
      // A pod that stops matching a watch's selectors is DELETED for that watch.
      if (w.matches(stamped)) w.res.write(JSON.stringify({ type, object: stamped }) + '\n');
      else if (before && w.matches(before)) w.res.write(JSON.stringify({ type: 'DELETED', object: stamped }) + '\n');
    }
  }

  /** Creates or changes a pod (ADDED or MODIFIED to every watch that selects it). */
  put(pod: Pod): void {
    this.emit(this.pods.has(pod.metadata.uid) ? 'MODIFIED' : 'ADDED', pod);
  }

  delete(uid: string): void {
    const pod = this.pods.get(uid);
    if (pod) this.emit('DELETED', pod);
  }

  /** What an API server does after compaction: the open watches end with 410 Gone, and a pod
   * deleted meanwhile is seen only as missing from the next list. */
  expireWatches(opts: { deleteSilently?: string[] } = {}): void {
    for (const uid of opts.deleteSilently ?? []) this.pods.delete(uid);
    this.compactedTo = this.rv++;
    this.history.length = 0;
    for (const w of [...this.watchers]) {
      w.res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', message: 'too old resource version', code: 410 } }) + '\n');
      this.watchers.delete(w);
    }
  }

  openWatches(): number {
    return this.watchers.size;
  }

  lists(): RecordedRequest[] {
    return this.requests.filter((r) => r.query.watch === undefined);
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
