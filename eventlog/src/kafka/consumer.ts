/**
 * Kafka consumer group member with end-to-end acknowledgement.
 *
 * kafkajs runs with `autoCommit: false` and `eachBatchAutoResolve: false`: an offset is resolved
 * and committed only after the handler resolved for the records before it. kafkajs fetches from
 * the last *resolved* offset, so anything not resolved is fetched again.
 *
 * A rejecting handler is not reported to kafkajs. kafkajs would log it, commit nothing (autoCommit
 * is off) and restart its fetch loop, which does refetch — but after its retries run out it
 * crashes the consumer, and a non-retriable error crashes it for good. Instead the same batch is
 * handed to the handler again, here, with exponential backoff (redelivery_initial_ms →
 * redelivery_max_ms), heartbeating meanwhile so the member keeps its partitions. The loop ends
 * when the handler resolves, when stop() is called, or when the partition was revoked
 * (isStale); in the last two cases nothing is resolved or committed, so the records go to the
 * next owner of the partition: redelivery is certain either way.
 *
 * Errors of kafkajs itself (heartbeat or commit failing because the group rebalances) are
 * rethrown as they are, so kafkajs rejoins the group; the uncommitted records are then fetched
 * again from the committed offset.
 */
import type { Consumer as KafkajsConsumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { BatchHandler, ConsumedRecord, Consumer, ConsumerBatch, ConsumerOptions } from '../types.ts';
import type { KafkaEventLogConfig } from './config.ts';
import { describeKafkaError, kafkaLogError } from './errors.ts';
import type { KafkaLogSink } from './logger.ts';

/** Test seams; not part of the EventLog interface. */
export interface KafkaConsumerHooks {
  /** Runs after the handler resolved and before the offsets are committed (e.g. to crash there). */
  beforeCommit?: (batch: ConsumerBatch) => Promise<void>;
}

const DEFAULT_MAX_BATCH_RECORDS = 500;
/** Group errors after which committing again cannot succeed until the member rejoins. */
const REJOIN_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);
const COMMIT_ATTEMPTS = 3;

type State = 'idle' | 'running' | 'stopping' | 'stopped';

export class KafkaConsumer implements Consumer {
  private readonly consumer: KafkajsConsumer;
  private state: State = 'idle';
  private handler: BatchHandler | null = null;
  private readonly maxBatchRecords: number;
  /** Wakes a redelivery backoff early when stop() is called. */
  private wakeSleepers: Array<() => void> = [];
  private stopped: Promise<void> | null = null;

  constructor(
    kafka: Kafka,
    private readonly config: KafkaEventLogConfig,
    private readonly options: ConsumerOptions,
    private readonly log: KafkaLogSink,
    private readonly hooks: KafkaConsumerHooks = {},
    private readonly onClosed: (c: KafkaConsumer) => void = () => {},
  ) {
    if (!options || typeof options.groupId !== 'string' || options.groupId.length === 0) {
      throw kafkaLogError('LOG_ERR_KAFKA_USAGE', 'consumer options need a non-empty groupId');
    }
    if (!Array.isArray(options.topics) || options.topics.length === 0) {
      throw kafkaLogError('LOG_ERR_KAFKA_USAGE', 'consumer options need at least one topic');
    }
    const max = options.maxBatchRecords ?? DEFAULT_MAX_BATCH_RECORDS;
    if (!Number.isInteger(max) || max < 1) {
      throw kafkaLogError('LOG_ERR_KAFKA_USAGE', 'maxBatchRecords must be a positive integer');
    }
    this.maxBatchRecords = max;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: config.session_timeout_ms,
      heartbeatInterval: config.heartbeat_interval_ms,
      maxWaitTimeInMs: config.fetch_max_wait_ms,
      allowAutoTopicCreation: false,
    });
    // A crash kafkajs will not recover from (non-retriable) leaves this member consuming nothing:
    // say so loudly. Retriable crashes are restarted by kafkajs (rejoin, refetch from committed).
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      const fields = { groupId: options.groupId, code: 'LOG_ERR_KAFKA_CONSUMER', restart: payload.restart };
      const msg = `kafka consumer crashed: ${describeKafkaError(payload.error)}`;
      if (payload.restart) this.log.warn(fields, msg);
      else this.log.error(fields, msg);
    });
  }

  async run(handler: BatchHandler): Promise<void> {
    if (this.state !== 'idle') {
      throw kafkaLogError('LOG_ERR_KAFKA_USAGE', `run() called on a consumer that is ${this.state}`);
    }
    this.state = 'running';
    this.handler = handler;
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: this.options.topics, fromBeginning: this.options.fromBeginning ?? true });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => this.onBatch(payload),
      });
    } catch (err) {
      this.state = 'stopped';
      await this.consumer.disconnect().catch(() => {});
      this.onClosed(this);
      throw kafkaLogError('LOG_ERR_KAFKA_CONNECT', `kafka consumer could not start: ${describeKafkaError(err)}`, err);
    }
  }

  /** Stop after the in-flight handler call; its offsets are committed if it resolved. Idempotent. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    for (const wake of this.wakeSleepers.splice(0)) wake();
    this.stopped = (async () => {
      // kafkajs's disconnect stops the fetch loop, waits for the running eachBatch, leaves the group.
      if (wasRunning) await this.consumer.disconnect().catch(() => {});
      this.state = 'stopped';
      this.onClosed(this);
    })();
    return this.stopped;
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const active = () => this.state === 'running' && isRunning() && !isStale();
    for (let start = 0; start < batch.messages.length; start += this.maxBatchRecords) {
      if (!active()) return; // not resolved: fetched again by whoever owns the partition next
      const chunk = batch.messages.slice(start, start + this.maxBatchRecords);
      const consumed: ConsumerBatch = { topic, partition, records: chunk.map((m) => toConsumed(topic, partition, m)) };
      if (!(await this.deliver(consumed, heartbeat, active))) return;
      await this.hooks.beforeCommit?.(consumed);
      const last = chunk[chunk.length - 1].offset;
      await this.commit(commitOffsetsIfNecessary, topic, partition, (BigInt(last) + 1n).toString());
      // After the commit: if the commit failed we threw above and the chunk is fetched again.
      resolveOffset(last);
      await heartbeat();
    }
  }

  /** Hand the batch to the handler until it resolves (true) or we must let go of it (false). */
  private async deliver(batch: ConsumerBatch, heartbeat: () => Promise<void>, active: () => boolean): Promise<boolean> {
    let delay = this.config.redelivery_initial_ms;
    for (let attempt = 1; ; attempt++) {
      if (!active()) return false;
      const beat = setInterval(() => {
        // Keep the membership alive during a long handler; a rebalance surfaces at the next
        // awaited heartbeat below, where kafkajs can act on it.
        heartbeat().catch(() => {});
      }, this.config.heartbeat_interval_ms);
      try {
        await this.handler!(batch);
        return true;
      } catch (err) {
        // Code/name only: a handler's message might quote the payload it choked on.
        const code = (err as { code?: unknown })?.code;
        this.log.warn(
          {
            groupId: this.options.groupId,
            topic: batch.topic,
            partition: batch.partition,
            offset: batch.records[0].offset,
            records: batch.records.length,
            attempt,
            error: typeof code === 'string' ? code : err instanceof Error ? err.name : typeof err,
            retryInMs: delay,
          },
          'batch handler rejected; the batch will be delivered again',
        );
      } finally {
        clearInterval(beat);
      }
      await this.backoff(delay, heartbeat, active);
      delay = Math.min(delay * 2, this.config.redelivery_max_ms);
    }
  }

  /** Sleep `ms`, heartbeating; returns early on stop(). Heartbeat errors (rebalance) propagate. */
  private async backoff(ms: number, heartbeat: () => Promise<void>, active: () => boolean): Promise<void> {
    const until = Date.now() + ms;
    while (active()) {
      const left = until - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.wakeSleepers = this.wakeSleepers.filter((w) => w !== wake);
          resolve();
        }, Math.min(left, this.config.heartbeat_interval_ms));
        this.wakeSleepers.push(wake);
      });
      if (active()) await heartbeat();
    }
  }

  private async commit(
    commitOffsets: EachBatchPayload['commitOffsetsIfNecessary'],
    topic: string,
    partition: number,
    offset: string,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await commitOffsets({ topics: [{ topic, partitions: [{ partition, offset }] }] });
        return;
      } catch (err) {
        const type = (err as { type?: unknown }).type;
        const rejoin = typeof type === 'string' && REJOIN_ERRORS.has(type);
        if (rejoin || attempt >= COMMIT_ATTEMPTS) {
          this.log.warn(
            { groupId: this.options.groupId, topic, partition, code: 'LOG_ERR_KAFKA_COMMIT', error: describeKafkaError(err) },
            'offset commit failed; the batch will be delivered again',
          );
          // The kafkajs error itself, so kafkajs recognises a rebalance and rejoins.
          throw err;
        }
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }
}

function toConsumed(topic: string, partition: number, m: KafkaMessage): ConsumedRecord {
  const headers: Record<string, string> = {};
  if (m.headers) {
    for (const [k, v] of Object.entries(m.headers)) {
      if (v === undefined) continue;
      // Kafka allows repeated header keys (kafkajs gives an array); the last one wins, as in
      // the Java client's lastHeader(). Our producer never repeats a key.
      const last = Array.isArray(v) ? v[v.length - 1] : v;
      if (last !== undefined) headers[k] = Buffer.isBuffer(last) ? last.toString('utf8') : String(last);
    }
  }
  return {
    topic,
    partition,
    offset: m.offset,
    timestamp: Number(m.timestamp),
    key: m.key ? m.key.toString('utf8') : '',
    value: m.value ?? Buffer.alloc(0),
    headers,
  };
}
