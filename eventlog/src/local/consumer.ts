/**
 * Consumer of the local log. One active member per group: a group's consumer reads every topic it
 * subscribed to (the single partition 0), so a second member would only duplicate work; a second
 * concurrent consumer of the same group in this process is refused with LOG_ERR_GROUP_BUSY, and
 * across processes it is the operator's job (nothing stops it, both would deliver the same records).
 *
 * Delivery: per topic in offset order, batches of ≤ maxBatchRecords, one handler call at a time.
 * The offset after a batch is committed (offsets.ts: temp + fsync + rename) only after the handler
 * resolved. If it rejects, nothing is committed and the same batch is delivered again after a
 * backoff (100 ms doubling to 5 s). When caught up the consumer sleeps until this process's writer
 * makes new records durable, or poll_interval_ms passes (a writer in another process).
 */
import type { BatchHandler, Consumer, ConsumerBatch, ConsumerOptions, ConsumedRecord, LogError } from '../types.ts';
import { isLogError, logError } from './errors.ts';
import { readCommitted, writeCommitted } from './offsets.ts';
import { endOffset, TopicReader } from './reader.ts';
import type { TopicState } from './topic.ts';

export interface LocalConsumerOptions extends ConsumerOptions {
  /**
   * Called once if delivery stops for good (e.g. LOG_ERR_CORRUPT, LOG_ERR_IO). Default: write the
   * code and message (never record contents) to stderr.
   */
  onError?: (err: LogError) => void;
  /** First redelivery delay after a handler rejection (doubles up to 5 s). Default 100 ms. */
  retryBackoffMs?: number;
}

/** What the consumer needs from the log (kept narrow so the consumer is testable on its own). */
export interface ConsumerHost {
  topic(name: string): Promise<TopicState>;
  readonly maxBody: number;
  readonly pollIntervalMs: number;
  /** A group committed on a topic: retention may be able to free space now. */
  committed(topic: TopicState): void;
  claimGroup(groupId: string, consumer: LocalConsumer): void;
  releaseGroup(groupId: string, consumer: LocalConsumer): void;
}

const DEFAULT_MAX_BATCH = 1000;
const MAX_BACKOFF_MS = 5000;

export class LocalConsumer implements Consumer {
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private woken = false;
  private readers: Array<{ topic: TopicState; reader: TopicReader }> = [];
  private readonly listener = (): void => this.poke();
  /** Set when delivery stopped on an error. */
  error: LogError | null = null;

  constructor(
    private readonly host: ConsumerHost,
    private readonly options: LocalConsumerOptions,
  ) {}

  async run(handler: BatchHandler): Promise<void> {
    if (this.running || this.stopping) throw logError('LOG_ERR_CLOSED', 'consumer already started or stopped');
    const { groupId, topics } = this.options;
    const max = this.options.maxBatchRecords ?? DEFAULT_MAX_BATCH;
    if (!Number.isInteger(max) || max < 1) throw new RangeError('maxBatchRecords must be a positive integer');
    this.host.claimGroup(groupId, this);
    try {
      for (const name of topics) {
        const topic = await this.host.topic(name);
        const committed = await readCommitted(topic.dir, groupId);
        const start =
          committed ?? (this.options.fromBeginning === false ? await endOffset(topic, this.host.maxBody) : topic.startOffset);
        this.readers.push({ topic, reader: new TopicReader(topic, start, this.host.maxBody) });
        topic.listeners.add(this.listener);
      }
    } catch (err) {
      await this.cleanup();
      throw err;
    }
    this.running = this.loop(handler, max);
  }

  private async loop(handler: BatchHandler, max: number): Promise<void> {
    try {
      while (!this.stopping) {
        let delivered = false;
        for (const { topic, reader } of this.readers) {
          if (this.stopping) break;
          const from = reader.offset;
          const decoded = await reader.read(max);
          if (decoded.length === 0) continue;
          const records: ConsumedRecord[] = decoded.map((d) => {
            const r: ConsumedRecord = { topic: topic.name, partition: 0, offset: String(d.offset), timestamp: d.timestamp, key: d.key, value: d.value };
            if (d.headers) r.headers = d.headers;
            return r;
          });
          const batch: ConsumerBatch = { topic: topic.name, partition: 0, records };
          if (!(await this.deliver(handler, batch))) {
            // Stopped while the batch was not acknowledged: rewind so a restart of this object
            // cannot skip it (the committed offset on disk is still `from`).
            reader.offset = from;
            return;
          }
          await writeCommitted(topic.dir, this.options.groupId, reader.offset);
          this.host.committed(topic);
          delivered = true;
        }
        if (!delivered) await this.sleep(this.host.pollIntervalMs);
      }
    } catch (err) {
      this.error = isLogError(err) ? err : logError('LOG_ERR_IO', `consumer failed: ${(err as Error).message}`, err);
      if (this.options.onError) this.options.onError(this.error);
      else process.stderr.write(`vigil eventlog consumer ${this.options.groupId} stopped: ${this.error.code} ${this.error.message}\n`);
    }
  }

  /** Hand the batch to the handler until it resolves (true) or the consumer stops (false). */
  private async deliver(handler: BatchHandler, batch: ConsumerBatch): Promise<boolean> {
    let delay = this.options.retryBackoffMs ?? 100;
    for (;;) {
      try {
        await handler(batch);
        return true;
      } catch {
        // The handler's error is its own to report; we only redeliver. Never log the records.
        // Sleep the full backoff (a data wake-up must not shorten it); only stop() cuts it short.
        const until = Date.now() + delay;
        while (!this.stopping && Date.now() < until) await this.sleep(until - Date.now());
        if (this.stopping) return false;
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private poke(): void {
    this.woken = true;
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.woken = false;
        resolve();
      };
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.poke();
    if (this.running) await this.running;
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    for (const { topic, reader } of this.readers) {
      topic.listeners.delete(this.listener);
      await reader.close();
    }
    this.readers = [];
    this.host.releaseGroup(this.options.groupId, this);
  }
}
