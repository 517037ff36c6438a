/**
 * Identity configuration: which issuer to trust and how. Validated once, defaults from the schema,
 * unknown keys rejected, every error reported at once, the result frozen.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { identityError } from './errors.ts';

/** Asymmetric JWS algorithms only: HS* would let anyone holding the (public) key mint tokens. */
const ALLOWED_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;

export const IdentityConfigSchema = Type.Object(
  {
    /** Expected `iss`, exactly. */
    issuer: Type.String({ minLength: 1 }),
    /** Expected `aud` (one of the token's audiences). */
    audience: Type.String({ minLength: 1, default: 'vigil' }),
    /** Issuer JWKS over HTTP(S); exactly one of jwks_url / jwks_file. */
    jwks_url: Type.Optional(Type.String({ minLength: 1 })),
    /** Local JWKS file (embedded dev issuer, air-gapped setups); re-read when it changes. */
    jwks_file: Type.Optional(Type.String({ minLength: 1 })),
    /** JWS `alg` allow-list. Checked below too, so a bad value gets a specific message. */
    algorithms: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, default: ['ES256', 'RS256', 'EdDSA'] }),
    /** Leeway for exp / nbf against clock skew between issuer and us. */
    clock_tolerance_s: Type.Integer({ minimum: 0, maximum: 600, default: 30 }),
    /** How long fetched JWKS keys are trusted before a refetch (also the refetch cooldown bound). */
    jwks_cache_ms: Type.Integer({ minimum: 0, default: 10 * 60_000 }),
    /** Claim holding the API roles (analyst, approver, auditor, admin). */
    roles_claim: Type.String({ minLength: 1, default: 'roles' }),
    /** Claim holding the caller's groups (used by policies). */
    groups_claim: Type.String({ minLength: 1, default: 'groups' }),
  },
  { additionalProperties: false },
);

export type IdentityConfigInput = Static<typeof IdentityConfigSchema>;
export type IdentityConfig = Readonly<Omit<IdentityConfigInput, 'algorithms'> & { algorithms: readonly string[] }>;

/** Validate, apply defaults, freeze. Throws ID_ERR_CONFIG listing every problem. */
export function parseIdentityConfig(input: unknown): IdentityConfig {
  const withDefaults = Value.Default(IdentityConfigSchema, Value.Clone(input ?? {}));
  const errors = [...Value.Errors(IdentityConfigSchema, withDefaults)].map((e) => `${e.path || '/'}: ${e.message}`);
  const c = withDefaults as IdentityConfigInput;
  if (c && typeof c === 'object') {
    if ((c.jwks_url === undefined) === (c.jwks_file === undefined)) {
      errors.push('/: exactly one of jwks_url or jwks_file is required');
    }
    if (typeof c.jwks_url === 'string') {
      try {
        const u = new URL(c.jwks_url);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') errors.push('/jwks_url: must be an http(s) URL');
      } catch {
        errors.push('/jwks_url: not a valid URL');
      }
    }
    if (Array.isArray(c.algorithms)) {
      for (const alg of c.algorithms) {
        if (typeof alg !== 'string') continue;
        if (alg.toLowerCase() === 'none') errors.push("/algorithms: 'none' is never allowed (unsigned tokens)");
        else if (/^HS/i.test(alg)) errors.push(`/algorithms: '${alg}' is refused (symmetric; key confusion with public keys)`);
        else if (!(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) errors.push(`/algorithms: '${alg}' is not a supported asymmetric JWS algorithm`);
      }
    }
  }
  if (errors.length > 0) throw identityError('ID_ERR_CONFIG', `invalid identity config: ${errors.join('; ')}`);
  return Object.freeze({ ...c, algorithms: Object.freeze([...c.algorithms]) });
}
