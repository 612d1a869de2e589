// What `fhirguard up` does with TLS. Not as root, the proxy is up's own process and gets the
// TLS options as given (paths made absolute: it runs from the install). As root, the agent
// runs the proxy in a container that sees only the install, a copy of the policy and the
// sockets: the certificate files would not be there, so up refuses TLS there, plainly, rather
// than start a front door that serves plain HTTP where HTTPS was asked for.

import path from 'node:path';
import { loadPolicy } from '../policy';

const TLS_FILE_OPTIONS = ['tls-cert', 'tls-key', 'tls-client-ca'] as const;

/** The proxy's TLS arguments, or why up cannot give them. */
export function tlsUnderUp(values: Record<string, unknown>, root: boolean, policyFile: string): { args: string[] } | { refused: string } {
  const given = [...TLS_FILE_OPTIONS, 'tls-client-cert'].filter((n) => typeof values[n] === 'string' && values[n] !== '');
  if (root) {
    if (given.length > 0)
      return {
        refused: `${given.map((n) => `--${n}`).join(', ')}: the confined front door cannot read certificate files yet; as root, put a TLS-terminating proxy in front of fhirguard, or run fhirguard proxy yourself (docs/tls.md)`,
      };
    let tiers: string[] = [];
    try {
      tiers = loadPolicy(policyFile)
        .tiers.filter((t) => t.tls)
        .map((t) => t.name);
    } catch {
      // A policy that does not load is reported by the agent, with every problem in it.
    }
    if (tiers.length > 0) return { refused: `tiers ${tiers.join(', ')} have a tls: block: the confined front door cannot read their certificate files yet (docs/tls.md)` };
  }
  return {
    args: given.flatMap((n) => [`--${n}`, n === 'tls-client-cert' ? String(values[n]) : path.resolve(String(values[n]))]),
  };
}
