// The query the proxy sends upstream: the one it checked, without what lenient handling
// dropped, and with every character RFC 3986 does not allow in a query percent-encoded.
// Clients send `identifier=system|code` with a bare `|` (FHIR's own examples do); Node reads it,
// but a strict server (Tomcat, under HAPI FHIR) refuses the request line with an HTML 400. The
// escape is the same query to any server that decodes it, which every FHIR server does.

/** Characters outside RFC 3986's query set (unreserved, sub-delims, ':', '@', '/', '?', '%'). */
const NOT_IN_QUERY = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/;
const NOT_IN_QUERY_ALL = new RegExp(NOT_IN_QUERY.source, 'g');

/** `c` as its percent-encoded bytes (the raw URL's characters are its bytes, one each). */
function escape(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(c);
}

/** The query with only characters RFC 3986 allows (the same string when it has no other). */
export function strictQuery(query: string): string {
  return NOT_IN_QUERY.test(query) ? query.replace(NOT_IN_QUERY_ALL, escape) : query;
}

/** The raw query without the parameters lenient handling dropped (`name[:modifier][.chain]`). */
function dropParams(query: string, dropped: readonly string[]): string {
  const drop = new Set(dropped);
  return query
    .split('&')
    .filter((pair) => {
      const eq = pair.indexOf('=');
      const key = decodeURIComponent((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '));
      return !drop.has(key);
    })
    .join('&');
}

/** What goes upstream for a checked `query` and the parameters lenient handling `dropped`. */
export function forwardQuery(query: string, dropped: readonly string[]): string {
  return strictQuery(dropped.length ? dropParams(query, dropped) : query);
}
