// What a loaded policy gives the rest of fhirguard: the tiers to start and route to, and the
// per-request decision. Re-exported by index.ts, the module's public face.

import type { Interaction } from '../fhir/interaction';
import type { AuthorizationConfig } from './authorization';
import type { LimitsConfig } from './limits';
import type { RuleSubject } from './identity-rules';
import type { ServerConfig } from './server';
import type { SupplyChainPolicy } from './supply-chain';
import type { UpstreamTls } from './upstream-tls';

export interface TierConfig {
  name: string;
  /**
   * Upstreams of an operator's own FHIR server: 'http://host:port', 'https://host:port',
   * 'unix:/path'. Empty = embedded reference workers started by `fhirguard up`.
   */
  upstreams: string[];
  /**
   * Number of embedded reference workers when upstreams is empty. Default 2 for read-only
   * tiers (reads scale across processes), 1 for tiers that write (one SQLite writer per
   * database avoids lock contention between workers). 0 when the tier has upstreams.
   */
  workers: number;
  /**
   * The operator's own server, run and confined by the agent in place of the reference
   * worker (`workers` of them, default 1); absent: reference workers, or upstreams.
   */
  server?: ServerConfig;
  /** TLS to the tier's https:// upstreams (`tls:`): CA bundle, client certificate; absent: the system's CAs. */
  tls?: UpstreamTls;
  /** Upstream response timeout; default 10000. */
  timeoutMs: number;
  /** Kernel confinement mode: audit counts violations, enforce blocks them. Default enforce. */
  mode: 'audit' | 'enforce';
  /** required: refuse to start without kernel enforcement; preferred: run degraded, loudly. Default preferred. */
  enforcement: 'required' | 'preferred';
  /**
   * The tier never writes: its workers open the database read-only and get read-only mounts.
   * Derived from the rules (no rule routes a possibly writing interaction to it); the file
   * may only make it stricter.
   */
  readOnly: boolean;
  /** Position in `tiers` (0 = least privileged). */
  rank: number;
}

export interface Policy {
  file: string;
  /** `sha256:<hex>` of the file's text: which policy is in force, in metrics and the log. */
  digest: string;
  tiers: TierConfig[];
  tierByName: ReadonlyMap<string, TierConfig>;
  /** The image scan gate (`supplyChain:`; defaults when the file has none). */
  supplyChain: SupplyChainPolicy;
  /** Things that load but are probably mistakes (an unused tier, a rule that never matches). */
  warnings: string[];
  /** Request rate and concurrency limits (`limits:`; none when the file has none). */
  limits: LimitsConfig;
  /** Some rule matches client certificates (`certificates:`), which the listener must verify (mTLS). */
  matchesCertificates: boolean;
  /** SMART on FHIR at the front door (`authorization:`); absent: no authorization. */
  authorization?: AuthorizationConfig;
  /**
   * The tier serving this interaction for `who` (the verified token's identity, when the
   * policy has authorization, and the verified client certificate, with mTLS), or throws FhirError 403 (reason 'policy') naming what was
   * denied and why.
   */
  decide(interaction: Interaction, who?: RuleSubject): TierConfig;
}
