/**
 * Authorization codes of the dev issuer (RFC 6749 §4.1.2): random, single use, short-lived, bound
 * to the client, the redirect URI and the PKCE challenge. In memory: a restart only costs an
 * in-flight login. Bounded, so a flood of logins cannot grow it without limit.
 */
import { randomBytes } from 'node:crypto';

export interface CodeGrant {
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  sub: string;
  roles: readonly string[];
  expires_at_ms: number;
}

export class CodeStore {
  private readonly codes = new Map<string, CodeGrant>();
  constructor(
    private readonly ttl_ms = 60_000,
    private readonly max_codes = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  issue(grant: Omit<CodeGrant, 'expires_at_ms'>): string {
    this.sweep();
    // Oldest first (Map keeps insertion order): drop the oldest pending login rather than refuse.
    while (this.codes.size >= this.max_codes) this.codes.delete(this.codes.keys().next().value as string);
    const code = randomBytes(32).toString('base64url');
    this.codes.set(code, { ...grant, expires_at_ms: this.now() + this.ttl_ms });
    return code;
  }

  /** Take (and forget) a code: a second redemption of the same code always fails. */
  redeem(code: string): CodeGrant | undefined {
    const grant = this.codes.get(code);
    this.codes.delete(code);
    if (!grant || grant.expires_at_ms < this.now()) return undefined;
    return grant;
  }

  private sweep(): void {
    const t = this.now();
    for (const [code, g] of this.codes) if (g.expires_at_ms < t) this.codes.delete(code);
  }
}
