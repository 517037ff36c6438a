/**
 * SIEM export configuration (`ingest.siem`; docs/siem.md). Secrets (webhook HMAC key, HEC token)
 * are references (`{ env: NAME }` or `{ file: PATH }`), resolved at start and never logged.
 */
import { Type, type Static } from '@sinclair/typebox';

export const SecretRef = Type.Union([
  Type.Object({ env: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object({ file: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
]);

const Delivery = {
  /** Sink name: its consumer group is `vigil-siem-<name>` (its cursor). */
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$' }),
  max_batch_events: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
  retry_backoff_ms: Type.Integer({ minimum: 1, default: 200 }),
  /** Retried in place this long; then the batch is handed back to the log (redelivered, never dropped). */
  retry_max_ms: Type.Integer({ minimum: 0, default: 30_000 }),
  timeout_ms: Type.Integer({ minimum: 1, default: 10_000 }),
  /** PEM file of the CA that signed the receiver's certificate (TLS); default: the system store. */
  ca_file: Type.Optional(Type.String()),
};

export const WebhookSinkSchema = Type.Object(
  { kind: Type.Literal('webhook'), ...Delivery, url: Type.String({ pattern: '^https?://' }), hmac_secret: SecretRef },
  { additionalProperties: false },
);
export const SyslogSinkSchema = Type.Object(
  {
    kind: Type.Literal('syslog'), ...Delivery, host: Type.String({ minLength: 1 }), port: Type.Integer({ minimum: 1, maximum: 65535 }),
    tls: Type.Boolean({ default: true }), app_name: Type.String({ default: 'vigil' }),
  },
  { additionalProperties: false },
);
export const HecSinkSchema = Type.Object(
  {
    kind: Type.Literal('hec'), ...Delivery, url: Type.String({ pattern: '^https?://' }), token: SecretRef,
    index: Type.Optional(Type.String()), sourcetype: Type.String({ default: 'ocsf' }),
  },
  { additionalProperties: false },
);

export const SiemConfigSchema = Type.Object(
  {
    ocsf: Type.Object(
      {
        /** Publish every event as OCSF on `vigil.ocsf.v1` (part of the batch's acknowledgement). */
        enabled: Type.Boolean({ default: true }),
        /** Raw frames as Network Activity (4001 Traffic): volume, so off by default. */
        include_frames: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    sinks: Type.Array(Type.Union([WebhookSinkSchema, SyslogSinkSchema, HecSinkSchema]), { default: [] }),
  },
  { additionalProperties: false, default: {} },
);

export type SiemConfig = Static<typeof SiemConfigSchema>;
export type SinkConfig = SiemConfig['sinks'][number];
export type SecretRef = Static<typeof SecretRef>;
