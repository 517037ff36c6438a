/**
 * Ingest configuration: validated once, defaults from the schema, unknown keys rejected, every
 * problem reported at once, the result frozen. Precedence (explicit > environment > default) is
 * resolved by the caller that merges files and environment; this module validates the result.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { Topics } from '@vigil/eventlog/types';
import { IngestError } from './errors.ts';
import { SecretRef } from '@vigil/gateway/secrets';

/** Masking at rest (docs/masking.md, "What each setting leaves where"). */
export const IngestMaskingSchema = Type.Object(
  {
    /**
     * The policy file whose mask rules apply to what is stored (hot-reloaded like the gateway's).
     * `vigil` fills in `gateway.policy_file` of the same configuration when this is absent.
     */
    policy_file: Type.Optional(Type.String({ minLength: 1 })),
    /** HMAC key of the `hash` strategy: the gateway's `masking.hash_key`, so stored hashes equal the ones clients got. */
    hash_key: Type.Optional(SecretRef),
    /**
     * Without a policy file: `store` keeps statements and parameters as sent (a deployment with no
     * masking); `redact` masks every constant of every statement and every parameter (ingest cannot
     * know what the gateways mask). `vigil` picks `redact` in distributed mode when no policy file
     * is configured and this is not set.
     */
    without_policy: Type.Union([Type.Literal('store'), Type.Literal('redact')], { default: 'store' }),
    /** Rows of each result kept as a preview with the query row (first result of the statement); 0 disables. */
    preview_rows: Type.Integer({ minimum: 0, maximum: 100, default: 3 }),
    /** A preview value longer than this (UTF-8 bytes) is cut at a word boundary before it is masked and stored. */
    preview_value_bytes: Type.Integer({ minimum: 16, maximum: 65_536, default: 256 }),
  },
  { additionalProperties: false, default: {} },
);
import { DetectConfigSchema } from './transforms/detect/config.ts';
import { SiemConfigSchema } from './siem/config.ts';

export const IngestConfigSchema = Type.Object(
  {
    /** Consumer group: offsets are committed per group; every ingest process of a deployment shares it. */
    group_id: Type.String({ minLength: 1, default: 'vigil-ingest' }),
    /** Chained-event topics to consume (the gateway's per-session streams). */
    topics: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, default: [Topics.frames] }),
    /** Upper bound on rows per ClickHouse insert; also the log batch size asked of the consumer. */
    max_batch_rows: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
    /**
     * How long rows of a log batch may wait for batches of other partitions to share one insert.
     * 0 = insert each log batch on its own as soon as it is decoded.
     */
    flush_interval_ms: Type.Integer({ minimum: 0, maximum: 60_000, default: 0 }),
    /** First delay before retrying a retriable store error; doubles per attempt (with jitter). */
    retry_backoff_ms: Type.Integer({ minimum: 1, maximum: 60_000, default: 100 }),
    /** Give up retrying in place after this long; the handler rejects and the log redelivers. */
    retry_max_ms: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
    /**
     * `vigil start` runs ingest in its own thread beside the gateway; this is that thread's nice
     * value (0–19). Recording is durable in the log before ingest sees it, so under load indexing
     * may lag and catch up later, while the gateway's data path keeps its CPU share.
     */
    thread_nice: Type.Integer({ minimum: 0, maximum: 19, default: 10 }),
    /**
     * That thread's Linux scheduling policy. `idle` (SCHED_IDLE, the default) runs it only on CPU
     * nothing else wants, so a burst of traffic never waits behind indexing; it catches up from the
     * log when the burst ends (under permanent saturation the log fills to its bound and the
     * gateway applies the log's full policy). `normal` uses `thread_nice` alone.
     */
    thread_policy: Type.Union([Type.Literal('idle'), Type.Literal('normal')], { default: 'idle' }),
    /**
     * In `vigil start`, ingest shares two cores with the gateway. While the gateway's thread is busy
     * (event-loop utilisation at or above `busy_utilization`), ingest defers reading the log for at
     * most `max_defer_ms`; then it reads without deferring until it has caught up with the log (the
     * log had nothing new for 250 ms) before it may defer again. A traffic burst thus pays nothing for indexing, and indexing (alerts included) lags it
     * by at most `max_defer_ms` plus the catch-up. 0 turns deferral off. `vigil ingest` on its own
     * never defers (no gateway beside it).
     */
    yield_to_gateway: Type.Object(
      {
        max_defer_ms: Type.Integer({ minimum: 0, maximum: 300_000, default: 15_000 }),
        busy_utilization: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.25 }),
      },
      { default: {}, additionalProperties: false },
    ),
    /** Log statements/parameters in decode errors. Never enable in production. */
    debug_payloads: Type.Boolean({ default: false }),
    masking: IngestMaskingSchema,
    /** Detectors and alerting (docs/detection.md). */
    detect: DetectConfigSchema,
    /** OCSF export and SIEM sinks (docs/siem.md). */
    siem: SiemConfigSchema,
  },
  { additionalProperties: false },
);

export const IngestSection = Type.Object({ ingest: IngestConfigSchema }, { additionalProperties: true });

export type IngestConfigInput = Partial<Static<typeof IngestConfigSchema>>;
export type IngestConfig = Readonly<Static<typeof IngestConfigSchema>>;

/** Validate `{ ingest: {...} }` or the bare section; throws ING_ERR_CONFIG listing every problem. */
export function loadIngestConfig(input: { ingest?: IngestConfigInput } | IngestConfigInput = {}): IngestConfig {
  const section = (input as { ingest?: unknown }).ingest ?? input;
  const value = Value.Default(IngestConfigSchema, structuredClone(section ?? {}));
  const errors = [...Value.Errors(IngestConfigSchema, value)].map((e) => `ingest${e.path.replaceAll('/', '.')}: ${e.message}`);
  if (errors.length > 0) throw new IngestError('ING_ERR_CONFIG', `invalid ingest configuration:\n  ${errors.join('\n  ')}`);
  const config = value as Static<typeof IngestConfigSchema>;
  Object.freeze(config.topics);
  Object.freeze(config.masking);
  return Object.freeze(config);
}
