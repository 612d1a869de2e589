// The little of the Kubernetes API the node agent needs: list and watch the pods of one
// namespace with a label and a field selector, from inside a pod (in-cluster configuration:
// $KUBERNETES_SERVICE_HOST/PORT, the service account's token and CA). Plain node:https: a
// general client library (@kubernetes/client-node and its dependency tree) would be most of
// the privileged agent's code for two GET requests.

import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Pod } from './pods';

export interface KubeConfig {
  host: string;
  port: number;
  ca: Buffer;
  /** Re-read at every request: the kubelet rotates projected service account tokens. */
  tokenFile: string;
}

export class KubeConfigError extends Error {}

/** The configuration a pod gets from Kubernetes (what client-go calls in-cluster config). */
export function inClusterConfig(serviceAccountDir: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = Number(env.KUBERNETES_SERVICE_PORT);
  if (!host || !Number.isInteger(port) || port <= 0) {
    throw new KubeConfigError('not inside a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
  }
  const tokenFile = path.join(serviceAccountDir, 'token');
  let ca: Buffer;
  try {
    ca = readFileSync(path.join(serviceAccountDir, 'ca.crt'));
    readFileSync(tokenFile);
  } catch (err) {
    throw new KubeConfigError(`no service account credentials in ${serviceAccountDir}: ${(err as Error).message}`);
  }
  return { host, port, ca, tokenFile };
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface PodSelector {
  namespace: string;
  labelSelector: string;
  fieldSelector: string;
}

export interface PodList {
  resourceVersion: string;
  items: Pod[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** How a watch ended: the server closed it (watch again from the last resourceVersion), or the
 * version is too old (HTTP 410 Gone: list again). */
export type WatchEnd = 'closed' | 'gone';

interface Status {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.once('end', () => resolve(body));
    res.once('error', reject);
  });
}

function statusMessage(body: string): string {
  try {
    const s = JSON.parse(body) as Status;
    if (s.message) return s.message;
  } catch {
    // not a Status object: the text itself
  }
  return body.trim().slice(0, 300);
}

export class KubeApi {
  constructor(
    readonly config: KubeConfig,
    /** No byte for this long ends a request (watches get a server-side timeout below it). */
    private readonly idleTimeoutMs = 60_000,
  ) {}

  private get(urlPath: string, query: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const token = readFileSync(this.config.tokenFile, 'utf8').trim();
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.config.host,
          port: this.config.port,
          path: `${urlPath}?${new URLSearchParams(query).toString()}`,
          method: 'GET',
          ca: this.config.ca,
          headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'user-agent': 'fhirguard-agent' },
          timeout: this.idleTimeoutMs,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          if (res.statusCode === 200) {
            resolve(res);
            return;
          }
          void readBody(res).then((body) => reject(new KubeApiError(res.statusCode ?? 0, `GET ${urlPath}: HTTP ${res.statusCode}: ${statusMessage(body)}`)), reject);
        },
      );
      req.once('timeout', () => req.destroy(new Error(`GET ${urlPath}: nothing from the API server in ${this.idleTimeoutMs} ms`)));
      req.once('error', reject);
      req.end();
    });
  }

  private podsPath(namespace: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
  }

  /** Every pod the selectors match, page by page. */
  async listPods(sel: PodSelector): Promise<PodList> {
    const items: Pod[] = [];
    let cont = '';
    for (;;) {
      const query: Record<string, string> = { labelSelector: sel.labelSelector, fieldSelector: sel.fieldSelector, limit: '500' };
      if (cont) query.continue = cont;
      const res = await this.get(this.podsPath(sel.namespace), query);
      const list = JSON.parse(await readBody(res)) as { metadata?: { resourceVersion?: string; continue?: string }; items?: Pod[] };
      items.push(...(list.items ?? []));
      cont = list.metadata?.continue ?? '';
      if (!cont) return { resourceVersion: list.metadata?.resourceVersion ?? '', items };
    }
  }

  /**
   * Streams the changes after `resourceVersion` to onEvent (bookmarks move onVersion only),
   * until the server ends the watch (after about timeoutSeconds), signal aborts, or the
   * version is gone (410).
   */
  async watchPods(
    sel: PodSelector,
    resourceVersion: string,
    onEvent: (type: WatchEventType, pod: Pod) => void,
    onVersion: (resourceVersion: string) => void,
    opts: { timeoutSeconds?: number; signal?: AbortSignal } = {},
  ): Promise<WatchEnd> {
    const query = {
      watch: '1',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(opts.timeoutSeconds ?? Math.floor(this.idleTimeoutMs / 2000)),
      labelSelector: sel.labelSelector,
      fieldSelector: sel.fieldSelector,
    };
    const res = await this.get(this.podsPath(sel.namespace), query, opts.signal);
    let end: WatchEnd = 'closed';
    let failure: Error | null = null;
    const lines = createInterface({ input: res });
    res.once('error', (err) => (failure = err));
    for await (const line of lines) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as { type: string; object: Pod & Status };
      if (e.type === 'ERROR') {
        if (e.object.code === 410) {
          end = 'gone';
          break;
        }
        throw new KubeApiError(e.object.code ?? 0, `watch of pods: ${e.object.message ?? JSON.stringify(e.object)}`);
      }
      const rv = e.object.metadata?.resourceVersion;
      if (e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED') onEvent(e.type, e.object);
      if (rv) onVersion(rv);
    }
    res.destroy();
    if (failure && !opts.signal?.aborted) throw failure;
    return end;
  }
}
