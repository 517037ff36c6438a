/**
 * Configuration of the local durable log. Validated once, defaults from the schema, unknown keys
 * rejected, every error reported at once, the result frozen (fastify discipline).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { logError } from './errors.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const LocalEventLogConfigSchema = Type.Object(
  {
    /** Log directory: one sub-directory per topic, plus the LOCK file. */
    dir: Type.String({ minLength: 1 }),
    /** A segment is rolled once appending would take it past this size. */
    segment_bytes: Type.Integer({ minimum: 1024, default: 64 * MiB }),
    /**
     * 'group': one write + one fsync per group commit, at most one commit per fsync_interval_ms
     *          (default; an idle log commits a lone send at once).
     * 'always': flush immediately on every send, no batching window (sends arriving while an fsync
     *           is in flight share the next one; each is fsync'd before it resolves).
     * 'never':  write() without fsync; durable against process crash, not against power loss.
     */
    fsync: Type.Union([Type.Literal('group'), Type.Literal('always'), Type.Literal('never')], { default: 'group' }),
    /** Minimum spacing of group commits under 'group' (bounds the fsync rate to 1000/interval per second). */
    fsync_interval_ms: Type.Number({ minimum: 0, maximum: 1000, default: 5 }),
    /** Bound on the bytes of all segments of all topics (pending, unwritten batches included). */
    max_bytes: Type.Integer({ minimum: 4096, default: 10 * GiB }),
    /**
     * Retention threshold: consumed segments are deleted only while total usage is above this.
     * Default (absent): 75% of max_bytes. Below it, consumed history is kept for re-reads.
     */
    retain_bytes: Type.Optional(Type.Integer({ minimum: 0 })),
    /** 'backpressure': send waits for space (default, audit data). 'fail_closed': send rejects LOG_ERR_FULL. */
    when_full: Type.Union([Type.Literal('backpressure'), Type.Literal('fail_closed')], { default: 'backpressure' }),
    /** Largest single record (encoded). */
    max_record_bytes: Type.Integer({ minimum: 64, default: 16 * MiB }),
    /** Flush before the group-commit timer fires once this many bytes are pending (bounds memory). */
    max_pending_bytes: Type.Integer({ minimum: 1024, default: 8 * MiB }),
    /** Tail-follow poll interval for data written by another process (in-process appends wake at once). */
    poll_interval_ms: Type.Integer({ minimum: 10, maximum: 10_000, default: 200 }),
    /** Open without the lock, never write or truncate (e.g. a consumer process beside the writer). */
    read_only: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

export type LocalEventLogConfigInput = Static<typeof LocalEventLogConfigSchema>;

export type LocalEventLogConfig = Readonly<Required<LocalEventLogConfigInput>>;

/** Validate, apply defaults and derived values, freeze. Throws LOG_ERR_CONFIG listing every problem. */
export function parseLocalEventLogConfig(input: unknown): LocalEventLogConfig {
  const withDefaults = Value.Default(LocalEventLogConfigSchema, Value.Clone(input ?? {}));
  const errors = [...Value.Errors(LocalEventLogConfigSchema, withDefaults)].map(
    (e) => `${e.path || '/'}: ${e.message}`,
  );
  if (errors.length === 0) {
    const c = withDefaults as LocalEventLogConfigInput;
    // The active segment of a topic is never deleted, so a segment as large as the whole bound
    // could deadlock backpressure; keep room for at least two segments.
    if (c.segment_bytes * 2 > c.max_bytes) errors.push('/segment_bytes: must be at most max_bytes / 2');
    if (c.max_record_bytes > c.max_bytes / 2) errors.push('/max_record_bytes: must be at most max_bytes / 2');
    if (c.retain_bytes !== undefined && c.retain_bytes > c.max_bytes) {
      errors.push('/retain_bytes: must be at most max_bytes');
    }
  }
  if (errors.length > 0) throw logError('LOG_ERR_CONFIG', `invalid local event log config: ${errors.join('; ')}`);
  const c = withDefaults as LocalEventLogConfigInput;
  return Object.freeze({ ...c, retain_bytes: c.retain_bytes ?? Math.floor(c.max_bytes * 0.75) });
}
