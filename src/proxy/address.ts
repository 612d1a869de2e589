// The two address forms fhirguard accepts: listeners as `host:port` (port 0 = any free port)
// and tier upstreams as `http[s]://host:port[/base]` or `unix:/path/to.sock`. Parsed once at
// start so a bad address is an error at start, never a surprise on the first request.

export interface HostPort {
  host: string;
  port: number;
}

/** `127.0.0.1:8080`, `[::1]:8080`, `:8080` (all interfaces). */
export function parseHostPort(text: string, what = 'address'): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`${what} '${text}' is not host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`${what} '${text}': port ${port} is out of range`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export interface Upstream {
  /** As written in the policy or by `up`, for logs and messages. */
  spec: string;
  /** Origin the HTTP client connects to (a placeholder for Unix sockets). */
  origin: string;
  socketPath?: string;
  /** Host header sent upstream: the upstream's own name for itself. */
  host: string;
  /** Path the upstream serves FHIR under ('' for the root). */
  basePath: string;
  /** The upstream's own absolute base URL, as it may appear in its Location headers. */
  baseUrl: string;
}

export function parseUpstream(spec: string): Upstream {
  if (spec.startsWith('unix:')) {
    const socketPath = spec.slice('unix:'.length);
    if (!socketPath.startsWith('/')) throw new Error(`upstream '${spec}': a Unix socket path must be absolute`);
    return { spec, origin: 'http://localhost', socketPath, host: 'localhost', basePath: '', baseUrl: 'http://localhost' };
  }
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new Error(`upstream '${spec}' is neither http://host:port nor unix:/path`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`upstream '${spec}': only http://, https:// and unix: upstreams are supported`);
  }
  if (url.search || url.hash || url.username) throw new Error(`upstream '${spec}' must not carry a query, fragment or credentials`);
  const basePath = url.pathname.replace(/\/+$/, '');
  return { spec, origin: url.origin, host: url.host, basePath, baseUrl: url.origin + basePath };
}
