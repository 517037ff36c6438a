/**
 * Configuration of the Kafka event log. Validated once, defaults from the schema, unknown keys
 * rejected, every error reported at once, the result frozen (fastify discipline).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { kafkaLogError } from './errors.ts';

const MiB = 1024 * 1024;

/** TLS toward the brokers: `true` for the system CAs, or PEM material. */
const SslSchema = Type.Union([
  Type.Boolean(),
  Type.Object(
    {
      ca: Type.Optional(Type.String()),
      cert: Type.Optional(Type.String()),
      key: Type.Optional(Type.String()),
      servername: Type.Optional(Type.String()),
      reject_unauthorized: Type.Boolean({ default: true }),
    },
    { additionalProperties: false },
  ),
]);

const SaslSchema = Type.Object(
  {
    mechanism: Type.Union([Type.Literal('plain'), Type.Literal('scram-sha-256'), Type.Literal('scram-sha-512')]),
    username: Type.String({ minLength: 1 }),
    password: Type.String(),
  },
  { additionalProperties: false },
);

export const KafkaEventLogConfigSchema = Type.Object(
  {
    /** Bootstrap brokers, `host:port`. */
    brokers: Type.Array(Type.String({ minLength: 3 }), { minItems: 1 }),
    client_id: Type.String({ minLength: 1, default: 'vigil' }),
    /** How long send() waits for more records before a batch goes out (kafkajs has no linger). */
    linger_ms: Type.Number({ minimum: 0, maximum: 1000, default: 5 }),
    /** A batch goes out as soon as it holds this many bytes; also the largest single record. */
    max_batch_bytes: Type.Integer({ minimum: 1024, maximum: 64 * MiB, default: 1 * MiB }),
    /** Bound on bytes queued in a producer: send() waits for room (backpressure) when full. */
    max_buffered_bytes: Type.Integer({ minimum: 1024, default: 32 * MiB }),
    /** Partition count and replication factor for topics created by ensureTopics(). */
    partitions: Type.Integer({ minimum: 1, maximum: 10_000, default: 6 }),
    replication_factor: Type.Integer({ minimum: 1, maximum: 32, default: 1 }),
    connection_timeout_ms: Type.Integer({ minimum: 100, default: 3000 }),
    request_timeout_ms: Type.Integer({ minimum: 100, default: 30_000 }),
    /** Consumer group membership: a silent member is removed after this long. */
    session_timeout_ms: Type.Integer({ minimum: 1000, default: 30_000 }),
    heartbeat_interval_ms: Type.Integer({ minimum: 100, default: 3000 }),
    /** Longest a fetch waits at the broker for data (also bounds how fast stop() is noticed). */
    fetch_max_wait_ms: Type.Integer({ minimum: 10, maximum: 30_000, default: 500 }),
    /** Backoff between redeliveries of a batch whose handler rejected (doubles up to the max). */
    redelivery_initial_ms: Type.Integer({ minimum: 1, default: 200 }),
    redelivery_max_ms: Type.Integer({ minimum: 1, default: 10_000 }),
    ssl: Type.Optional(SslSchema),
    sasl: Type.Optional(SaslSchema),
  },
  { additionalProperties: false },
);

export type KafkaEventLogConfigInput = Static<typeof KafkaEventLogConfigSchema>;
export type KafkaEventLogConfig = Readonly<KafkaEventLogConfigInput>;

/** Validate, apply defaults, freeze. Throws LOG_ERR_KAFKA_CONFIG listing every problem. */
export function parseKafkaEventLogConfig(input: unknown): KafkaEventLogConfig {
  const withDefaults = Value.Default(KafkaEventLogConfigSchema, Value.Clone(input ?? {}));
  // Paths and messages only: never echo values (sasl.password, ssl.key live here).
  const errors = [...Value.Errors(KafkaEventLogConfigSchema, withDefaults)].map(
    (e) => `${e.path || '/'}: ${e.message}`,
  );
  if (errors.length === 0) {
    const c = withDefaults as KafkaEventLogConfigInput;
    if (c.max_buffered_bytes < c.max_batch_bytes) errors.push('/max_buffered_bytes: must be at least max_batch_bytes');
    if (c.heartbeat_interval_ms * 3 > c.session_timeout_ms) {
      errors.push('/heartbeat_interval_ms: must be at most session_timeout_ms / 3');
    }
    if (c.redelivery_max_ms < c.redelivery_initial_ms) {
      errors.push('/redelivery_max_ms: must be at least redelivery_initial_ms');
    }
  }
  if (errors.length > 0) throw kafkaLogError('LOG_ERR_KAFKA_CONFIG', `invalid kafka event log config: ${errors.join('; ')}`);
  const c = withDefaults as KafkaEventLogConfigInput;
  return Object.freeze({ ...c, brokers: Object.freeze([...c.brokers]) as string[] });
}
