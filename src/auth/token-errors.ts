// The two ways checking a token fails: the token is not good (401 invalid_token), or the
// issuer could not be asked (503, fail closed). Kept apart from the verifier so the request
// path can tell them apart without loading it.

/** The token is not good: 401 invalid_token. */
export class InvalidToken extends Error {}

/** The issuer could not be asked: 503, the request is refused. */
export class IssuerUnavailable extends Error {}
