/**
 * The Kafka implementation of the event log (distributed mode), on kafkajs.
 *
 *   const log = new KafkaEventLog({ brokers: ['127.0.0.1:19092'] });
 *   await log.ensureTopics([Topics.frames]);
 *   const producer = log.producer();            // idempotent, acks=all, linger batching
 *   await producer.send(Topics.frames, [{ key: sessionId, value, headers }]);
 *   const consumer = log.consumer({ groupId: 'ingest', topics: [Topics.frames] });
 *   await consumer.run(async (batch) => { ...; });   // offsets committed after this resolves
 */
import { Kafka, type Admin, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import type { ConsumerOptions, EventLog } from '../types.ts';
import { parseKafkaEventLogConfig, type KafkaEventLogConfig } from './config.ts';
import { KafkaConsumer, type KafkaConsumerHooks } from './consumer.ts';
import { describeKafkaError, kafkaCause, kafkaLogError } from './errors.ts';
import { kafkajsLogCreator, stderrLogSink, type KafkaLogSink } from './logger.ts';
import { KafkaProducer } from './producer.ts';

export { KafkaEventLogConfigSchema, parseKafkaEventLogConfig } from './config.ts';
export type { KafkaEventLogConfig, KafkaEventLogConfigInput } from './config.ts';
export { KafkaLogErrors, type KafkaLogErrorCode } from './errors.ts';
export { KafkaConsumer, type KafkaConsumerHooks } from './consumer.ts';
export { KafkaProducer } from './producer.ts';
export type { KafkaLogSink } from './logger.ts';

export interface KafkaEventLogOptions {
  /** Receives kafkajs WARN/ERROR entries (whitelisted fields only) and our own warnings. */
  logger?: KafkaLogSink;
}

export class KafkaEventLog implements EventLog {
  readonly kind = 'kafka' as const;
  readonly config: KafkaEventLogConfig;
  private readonly kafka: Kafka;
  private readonly log: KafkaLogSink;
  private admin: Admin | null = null;
  private readonly producers = new Set<KafkaProducer>();
  private readonly consumers = new Set<KafkaConsumer>();
  private closed = false;

  /** Throws LOG_ERR_KAFKA_CONFIG (every problem listed) on an invalid config. */
  constructor(config: unknown, options: KafkaEventLogOptions = {}) {
    this.config = parseKafkaEventLogConfig(config);
    this.log = options.logger ?? stderrLogSink;
    this.kafka = new Kafka(kafkajsConfig(this.config, this.log));
  }

  async ensureTopics(topics: string[]): Promise<void> {
    this.assertOpen();
    if (topics.length === 0) return;
    const admin = await this.connectAdmin();
    const names = [...new Set(topics)];
    // Which topics are new is asked first: kafkajs's createTopics resolves false whenever every
    // error it got was TOPIC_ALREADY_EXISTS, also when it did create the others in the same call,
    // so its answer cannot tell a mix from "all existed" (and the new ones went unwaited for).
    let existing: Set<string>;
    try {
      existing = new Set(await admin.listTopics());
    } catch (err) {
      throw kafkaLogError('LOG_ERR_KAFKA_ADMIN', `listing topics failed: ${describeKafkaError(err)}`, err);
    }
    const created = names.filter((t) => !existing.has(t));
    if (created.length === 0) return;
    try {
      // kafkajs's own leader wait retries only LEADER_NOT_AVAILABLE, but a KRaft broker answers
      // UNKNOWN_TOPIC_OR_PARTITION for a moment after creating a topic (its metadata cache has not
      // caught up yet), which failed the call though the topic was there: waitForTopicLeaders below
      // waits through both.
      await admin.createTopics({
        waitForLeaders: false,
        timeout: this.config.request_timeout_ms,
        topics: created.map((topic) => ({
          topic,
          numPartitions: this.config.partitions,
          replicationFactor: this.config.replication_factor,
        })),
      });
    } catch (err) {
      // Another process created one in between: it is just as new, and waited for below.
      if (!onlyAlreadyExists(err)) {
        throw kafkaLogError('LOG_ERR_KAFKA_ADMIN', `createTopics failed: ${describeKafkaError(err)}`, err);
      }
    }
    // Only for topics that did not exist: a topic that already existed is the producer's to wait
    // for (its sends retry a missing leader, and the gateway's spool covers an unavailable one),
    // so a gateway can still start while a partition of an existing topic has no leader.
    await waitForTopicLeaders(admin, created, this.config.request_timeout_ms);
  }

  producer(): KafkaProducer {
    this.assertOpen();
    const p = new KafkaProducer(this.kafka, this.config, (closed) => this.producers.delete(closed));
    this.producers.add(p);
    return p;
  }

  /** `hooks` are test seams (see KafkaConsumerHooks); production callers pass only options. */
  consumer(options: ConsumerOptions, hooks?: KafkaConsumerHooks): KafkaConsumer {
    this.assertOpen();
    const c = new KafkaConsumer(this.kafka, this.config, options, this.log, hooks, (closed) =>
      this.consumers.delete(closed),
    );
    this.consumers.add(c);
    return c;
  }

  /** Stops consumers (after their in-flight batch), flushes and closes producers, closes admin. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await Promise.all([...this.producers].map((p) => p.close()));
    if (this.admin) await this.admin.disconnect().catch(() => {});
    this.admin = null;
  }

  /** The kafkajs admin client, connected (shared; closed by close()). For tooling and tests. */
  async connectAdmin(): Promise<Admin> {
    this.assertOpen();
    if (this.admin) return this.admin;
    const admin = this.kafka.admin();
    try {
      await admin.connect();
    } catch (err) {
      throw kafkaLogError('LOG_ERR_KAFKA_CONNECT', `kafka admin could not connect: ${describeKafkaError(err)}`, err);
    }
    this.admin = admin;
    return admin;
  }

  private assertOpen(): void {
    if (this.closed) throw kafkaLogError('LOG_ERR_KAFKA_CLOSED', 'kafka event log is closed');
  }
}

function kafkajsConfig(c: KafkaEventLogConfig, log: KafkaLogSink): KafkaConfig {
  const config: KafkaConfig = {
    clientId: c.client_id,
    brokers: [...c.brokers],
    connectionTimeout: c.connection_timeout_ms,
    requestTimeout: c.request_timeout_ms,
    logCreator: kafkajsLogCreator(log),
  };
  if (c.ssl !== undefined) {
    if (typeof c.ssl === 'boolean') {
      config.ssl = c.ssl;
    } else {
      const tls: ConnectionOptions = { rejectUnauthorized: c.ssl.reject_unauthorized };
      if (c.ssl.ca !== undefined) tls.ca = c.ssl.ca;
      if (c.ssl.cert !== undefined) tls.cert = c.ssl.cert;
      if (c.ssl.key !== undefined) tls.key = c.ssl.key;
      if (c.ssl.servername !== undefined) tls.servername = c.ssl.servername;
      config.ssl = tls;
    }
  }
  if (c.sasl) config.sasl = { mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password } as SASLOptions;
  return config;
}

/** Metadata error types that mean "the topic is being created", not "it failed". */
const TOPIC_NOT_READY = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * Waits until every partition of every topic has a leader, polling metadata every 100 ms for at most
 * `timeoutMs`. Any error other than "not ready yet" fails at once; the timeout fails with the last
 * thing the broker said.
 */
async function waitForTopicLeaders(admin: Admin, topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      const waiting = meta.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0));
      if (waiting.length === 0) return;
      last = `no leader yet for ${waiting.map((t) => t.name).join(', ')}`;
    } catch (err) {
      if (!notReady(err)) {
        throw kafkaLogError('LOG_ERR_KAFKA_ADMIN', `createTopics failed: ${describeKafkaError(err)}`, err);
      }
      last = describeKafkaError(err);
    }
    if (Date.now() >= deadline) {
      throw kafkaLogError(
        'LOG_ERR_KAFKA_ADMIN',
        `createTopics: topics not ready after ${timeoutMs} ms (${last}): ${topics.join(', ')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function notReady(err: unknown): boolean {
  return TOPIC_NOT_READY.has((kafkaCause(err) as { type?: string } | undefined)?.type ?? '');
}

/** kafkajs reports per-topic failures in a KafkaJSAggregateError; "already exists" is success here. */
function onlyAlreadyExists(err: unknown): boolean {
  const isExists = (e: unknown) => (e as { type?: unknown })?.type === 'TOPIC_ALREADY_EXISTS';
  if (isExists(err)) return true;
  const errors = (err as { errors?: unknown })?.errors;
  return Array.isArray(errors) && errors.length > 0 && errors.every(isExists);
}
