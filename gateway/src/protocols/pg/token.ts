/**
 * Caller authentication outcome, pure: maps a TokenVerifier failure (IdentityError ID_ERR_*) to the
 * gateway's GW_ERR_* code and a reason safe to show the client and record (IdentityError messages
 * never contain the token; anything unexpected gets a generic reason rather than its message).
 */
import type { GatewayErrorCode } from '../../errors.ts';

const BY_IDENTITY_CODE: Readonly<Record<string, GatewayErrorCode>> = {
  ID_ERR_MALFORMED: 'GW_ERR_TOKEN_INVALID',
  ID_ERR_NO_SUB: 'GW_ERR_TOKEN_INVALID',
  ID_ERR_ALG_NOT_ALLOWED: 'GW_ERR_TOKEN_ALGORITHM',
  ID_ERR_BAD_SIGNATURE: 'GW_ERR_TOKEN_SIGNATURE',
  ID_ERR_TOKEN_EXPIRED: 'GW_ERR_TOKEN_EXPIRED',
  ID_ERR_TOKEN_NOT_YET_VALID: 'GW_ERR_TOKEN_NOT_YET_VALID',
  ID_ERR_WRONG_ISSUER: 'GW_ERR_TOKEN_ISSUER',
  ID_ERR_WRONG_AUDIENCE: 'GW_ERR_TOKEN_AUDIENCE',
  ID_ERR_JWKS_UNAVAILABLE: 'GW_ERR_IDP_UNAVAILABLE',
};

export interface TokenFailure {
  code: GatewayErrorCode;
  reason: string;
}

export function tokenFailure(err: unknown): TokenFailure {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code in BY_IDENTITY_CODE) {
    const mapped = BY_IDENTITY_CODE[code]!;
    // JWKS failures describe our infrastructure (URL, file path); the client only needs "retry".
    if (mapped === 'GW_ERR_IDP_UNAVAILABLE') return { code: mapped, reason: 'issuer keys are unavailable, try again later' };
    const message = (err as Error).message;
    return { code: BY_IDENTITY_CODE[code]!, reason: typeof message === 'string' && message ? message : code };
  }
  return { code: 'GW_ERR_TOKEN_INVALID', reason: 'token could not be verified' };
}
