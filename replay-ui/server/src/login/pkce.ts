/** PKCE (RFC 7636) checks for the dev issuer's token endpoint. Only S256: `plain` adds nothing over no PKCE. */
import { createHash, timingSafeEqual } from 'node:crypto';

/** code_verifier = 43*128unreserved (§4.1); a code_challenge (S256) is 43 base64url characters. */
export const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
export const CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier)) return false;
  const a = Buffer.from(s256(verifier));
  const b = Buffer.from(challenge);
  return a.length === b.length && timingSafeEqual(a, b);
}
