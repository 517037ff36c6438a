/**
 * API server configuration (the `api:` section). Validated once, defaults from the schema, unknown
 * keys rejected, every error reported at once, the result frozen.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { apiError } from './errors.ts';

export const ApiConfigSchema = Type.Object(
  {
    /** Loopback by default: exposing the audit API is a deliberate choice. */
    listen_host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    listen_port: Type.Integer({ minimum: 0, maximum: 65535, default: 8480 }),
    /** Page size when a list request gives no `limit`. */
    page_size_default: Type.Integer({ minimum: 1, default: 50 }),
    /** Upper bound of `limit` (and of the queries returned with one session per request). */
    page_size_max: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
    /** The web UI (replay-ui/web) served at /ui/ and how it logs in (OIDC authorization code + PKCE). */
    ui: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        /** OAuth client id the UI presents to the issuer (register it there with redirect URI <api>/ui/callback). */
        client_id: Type.String({ minLength: 1, maxLength: 256, default: 'vigil-ui' }),
        /** Scopes requested at login. */
        scope: Type.String({ minLength: 1, maxLength: 1024, default: 'openid' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type ApiConfigInput = Static<typeof ApiConfigSchema>;
export type ApiConfig = Readonly<ApiConfigInput>;

/** Validate, apply defaults, freeze. Throws API_ERR_CONFIG listing every problem. */
export function parseApiConfig(input: unknown): ApiConfig {
  const withDefaults = Value.Default(ApiConfigSchema, Value.Clone(input ?? {}));
  const errors = [...Value.Errors(ApiConfigSchema, withDefaults)].map((e) => `${e.path || '/'}: ${e.message}`);
  const c = withDefaults as ApiConfigInput;
  if (errors.length === 0 && c.page_size_default > c.page_size_max) {
    errors.push('/page_size_default: must be at most page_size_max');
  }
  if (errors.length > 0) throw apiError('API_ERR_CONFIG', `invalid api config: ${errors.join('; ')}`);
  return Object.freeze({ ...c, ui: Object.freeze({ ...c.ui }) });
}
