/**
 * Stable error codes of identity (token verification, dev issuer, configuration). Callers branch on
 * `code` and retry only when `retriable` is set; messages are for humans and never contain the token.
 */
import { IdentityError } from './types.ts';

export interface IdentityErrorInfo {
  retriable: boolean;
  description: string;
}

export const IDENTITY_ERRORS = {
  ID_ERR_CONFIG: { retriable: false, description: 'The identity configuration is invalid (every problem is listed).' },
  ID_ERR_MALFORMED: { retriable: false, description: 'The token is not a well-formed compact JWS/JWT (bad segments, JSON, or claim types).' },
  ID_ERR_ALG_NOT_ALLOWED: { retriable: false, description: "The token's `alg` header is not in the configured allow-list (`none` and HS* are never allowed)." },
  ID_ERR_BAD_SIGNATURE: { retriable: false, description: 'The signature does not verify against any key of the issuer JWKS (unknown `kid`, wrong key, or tampered token).' },
  ID_ERR_TOKEN_EXPIRED: { retriable: false, description: 'The token `exp` is in the past beyond the clock tolerance.' },
  ID_ERR_TOKEN_NOT_YET_VALID: { retriable: false, description: 'The token `nbf` (or `iat`) is in the future beyond the clock tolerance.' },
  ID_ERR_WRONG_ISSUER: { retriable: false, description: 'The token `iss` is not the configured issuer.' },
  ID_ERR_WRONG_AUDIENCE: { retriable: false, description: 'The token `aud` does not contain the configured audience.' },
  ID_ERR_NO_SUB: { retriable: false, description: 'The token has no non-empty `sub` claim, so the caller cannot be attributed.' },
  ID_ERR_JWKS_UNAVAILABLE: { retriable: true, description: 'The issuer JWKS could not be fetched or read (network, HTTP status, timeout, or unreadable file); retry later.' },
  ID_ERR_DEV_ISSUER: { retriable: false, description: 'The embedded dev issuer could not load or create its key files.' },
} as const satisfies Record<string, IdentityErrorInfo>;

export type IdentityErrorCode = keyof typeof IDENTITY_ERRORS;

/** Build an IdentityError whose `retriable` flag always comes from the table. */
export function identityError(code: IdentityErrorCode, message: string, cause?: unknown): IdentityError {
  return new IdentityError(code, message, IDENTITY_ERRORS[code].retriable, cause === undefined ? undefined : { cause });
}

export { IdentityError };
