// `[base]/.well-known/smart-configuration` (SMART App Launch 2.x §Conformance): where a SMART
// app finds the issuer's endpoints and what this server supports. Built from the policy's
// `authorization.smart` block, with the endpoints it leaves out taken from the issuer's OpenID
// discovery document: fetched at start, and again in the background until the issuer answers.
// The CapabilityStatement's rest.security names the same endpoints.

import type { Logger } from 'pino';
import type { AuthorizationConfig } from '../policy/authorization';
import { discovery, type Discovery } from './issuer';

/** How long to wait before asking an issuer that did not answer again. */
const RETRY_MS = 10_000;

export class SmartConfiguration {
  private found: Discovery | undefined;
  private text: string | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AuthorizationConfig,
    private readonly log: Logger,
    /** Called once the issuer's endpoints are known. */
    private readonly changed: () => void = () => undefined,
  ) {
    this.build();
  }

  /** Asks the issuer for its discovery document; keeps asking in the background until it answers. */
  async resolve(): Promise<void> {
    try {
      this.found = await discovery(this.config.issuer);
      this.build();
      this.changed();
    } catch (err) {
      this.log.warn({ err, issuer: this.config.issuer }, 'the issuer did not answer its discovery document; .well-known/smart-configuration waits for it');
      this.retry = setTimeout(() => void this.resolve(), RETRY_MS);
      this.retry.unref();
    }
  }

  stop(): void {
    clearTimeout(this.retry);
  }

  /** The endpoints published, where known. */
  endpoints(): { authorize?: string; token?: string } {
    const authorize = this.config.smart.authorizationEndpoint ?? this.found?.authorization_endpoint;
    const token = this.config.smart.tokenEndpoint ?? this.found?.token_endpoint;
    return { ...(authorize ? { authorize } : {}), ...(token ? { token } : {}) };
  }

  /** The document as served; undefined while the token endpoint, which it must name, is unknown. */
  current(): string | undefined {
    return this.text;
  }

  private build(): void {
    const { authorize, token } = this.endpoints();
    if (!token) return;
    const found = this.found;
    this.text = JSON.stringify({
      issuer: this.config.issuer,
      ...(this.config.jwksUri || found?.jwks_uri ? { jwks_uri: this.config.jwksUri ?? found?.jwks_uri } : {}),
      ...(authorize ? { authorization_endpoint: authorize } : {}),
      token_endpoint: token,
      grant_types_supported: found?.grant_types_supported ?? ['authorization_code', 'client_credentials'],
      ...(found?.token_endpoint_auth_methods_supported ? { token_endpoint_auth_methods_supported: found.token_endpoint_auth_methods_supported } : {}),
      ...(found?.registration_endpoint ? { registration_endpoint: found.registration_endpoint } : {}),
      ...(found?.introspection_endpoint ? { introspection_endpoint: found.introspection_endpoint } : {}),
      ...(found?.revocation_endpoint ? { revocation_endpoint: found.revocation_endpoint } : {}),
      scopes_supported: this.config.smart.scopesSupported ?? ['openid', 'fhirUser', 'launch', 'launch/patient', 'offline_access', 'patient/*.rs', 'user/*.rs', 'user/*.cruds', 'system/*.rs'],
      response_types_supported: ['code'],
      capabilities: this.config.smart.capabilities,
      code_challenge_methods_supported: ['S256'],
    });
  }
}
