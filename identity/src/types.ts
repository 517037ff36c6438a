/**
 * Identity: verification of OIDC access tokens (gateway callers and API requests) and the dev
 * issuer of the embedded mode. The gateway and the API depend only on these types.
 */

/** What a verified token says about its bearer. */
export interface VerifiedIdentity {
  sub: string;
  issuer: string;
  groups: string[];
  /** API roles: analyst, approver, auditor, admin (claim `roles`). */
  roles: string[];
  /** `agent` when the token says so (claim `actor_kind` or `act`), else `human`. */
  actor_kind: 'agent' | 'human';
  /** Expiry, seconds since epoch. */
  exp?: number;
}

export interface TokenVerifier {
  /** Verify signature, issuer, audience, exp/nbf (with tolerance) and algorithm; throws IdentityError. */
  verify(token: string): Promise<VerifiedIdentity>;
}

/** Stable error codes of token verification; `retriable` only for JWKS fetch failures. */
export class IdentityError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IdentityError';
  }
}
