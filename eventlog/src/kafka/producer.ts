/**
 * Kafka producer with a linger accumulator.
 *
 * kafkajs sends each `send()` call as its own request and has no `linger.ms`; the gateway calls
 * send() per frame, so without batching every frame would be a round trip. Records from send()
 * calls are queued and go out in one `sendBatch` when `linger_ms` has passed since the oldest
 * queued record, or as soon as `max_batch_bytes` are queued.
 *
 * Ordering: exactly one `sendBatch` is in flight per producer, and batches are cut from the head
 * of one FIFO queue, so records of a key reach the broker in send() order. (kafkajs with
 * `idempotent: true` and `maxInFlightRequests: 1` keeps order inside one sendBatch, including its
 * own retries.) When a batch fails, the records queued behind it are failed too
 * (LOG_ERR_KAFKA_SEND_ABORTED) instead of being sent: otherwise a later record of a session could
 * be durable while an earlier one is lost, a hole the caller could only patch out of order.
 *
 * Memory is bounded by `max_buffered_bytes` (queued + in flight); when full, send() waits
 * (backpressure, the default for audit data).
 */
import { CompressionTypes, type Kafka, type Message, type Producer as KafkajsProducer, Partitioners } from 'kafkajs';
import type { LogRecord, Producer } from '../types.ts';
import type { KafkaEventLogConfig } from './config.ts';
import { describeKafkaError, kafkaLogError } from './errors.ts';

/** Per-record framing overhead of a v2 record (attributes, varints, timestamp/offset deltas), rounded up. */
const RECORD_OVERHEAD_BYTES = 64;

/** One send() call: settles once all of its records are acked, or at the first failure. */
interface SendState {
  remaining: number;
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface QueuedRecord {
  topic: string;
  message: Message;
  bytes: number;
  send: SendState;
}

interface RoomWaiter {
  bytes: number;
  wake: () => void;
}

export function recordBytes(record: LogRecord): number {
  let n = RECORD_OVERHEAD_BYTES + Buffer.byteLength(record.key) + record.value.length;
  if (record.headers) {
    for (const [k, v] of Object.entries(record.headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
  }
  return n;
}

export class KafkaProducer implements Producer {
  private readonly producer: KafkajsProducer;
  private connecting: Promise<void> | null = null;
  private connected = false;
  private readonly queue: QueuedRecord[] = [];
  /** Index of the first not-yet-dispatched record (the queue is compacted lazily). */
  private head = 0;
  private queuedBytes = 0;
  /** Queued + in-flight bytes, the quantity bounded by max_buffered_bytes. */
  private bufferedBytes = 0;
  private oldestQueuedAt = 0;
  private inFlight = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly roomWaiters: RoomWaiter[] = [];
  private closing = false;
  private closed: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];
  private readonly counters = { sends: 0, records: 0, batches: 0 };

  constructor(
    kafka: Kafka,
    private readonly config: KafkaEventLogConfig,
    private readonly onClosed: (p: KafkaProducer) => void = () => {},
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      // Required for ordering with retries in kafkajs (it does not pipeline idempotent requests safely).
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java-compatible murmur2 partitioning, so other clients keyed by session id agree.
      createPartitioner: Partitioners.DefaultPartitioner,
    });
  }

  send(topic: string, records: LogRecord[]): Promise<void> {
    if (this.closing) return Promise.reject(kafkaLogError('LOG_ERR_KAFKA_CLOSED', 'producer is closed'));
    if (typeof topic !== 'string' || topic.length === 0) {
      return Promise.reject(kafkaLogError('LOG_ERR_KAFKA_INVALID_RECORD', 'topic must be a non-empty string'));
    }
    if (!Array.isArray(records)) {
      return Promise.reject(kafkaLogError('LOG_ERR_KAFKA_INVALID_RECORD', 'records must be an array'));
    }
    if (records.length === 0) return Promise.resolve();
    // Validate everything before queueing anything: a send is all-or-nothing at the door.
    const sizes: number[] = [];
    let total = 0;
    for (let i = 0; i < records.length; i++) {
      const problem = invalidRecord(records[i]);
      if (problem) {
        return Promise.reject(kafkaLogError('LOG_ERR_KAFKA_INVALID_RECORD', `record ${i} for ${topic}: ${problem}`));
      }
      const bytes = recordBytes(records[i]);
      if (bytes > this.config.max_batch_bytes) {
        return Promise.reject(
          kafkaLogError(
            'LOG_ERR_KAFKA_TOO_LARGE',
            `record ${i} for ${topic} is ~${bytes} bytes, over max_batch_bytes ${this.config.max_batch_bytes}`,
          ),
        );
      }
      sizes.push(bytes);
      total += bytes;
    }
    this.counters.sends++;
    this.counters.records += records.length;
    return new Promise<void>((resolve, reject) => {
      const state: SendState = { remaining: records.length, settled: false, resolve, reject };
      const enqueue = () => this.enqueue(topic, records, sizes, state);
      // FIFO: a send never overtakes one that is waiting for room (per-key order across calls).
      if (this.roomWaiters.length === 0 && this.hasRoom(total)) {
        this.bufferedBytes += total;
        enqueue();
      } else {
        this.roomWaiters.push({ bytes: total, wake: enqueue });
      }
    });
  }

  /** Counts since creation: send() calls and records accepted, sendBatch requests made. */
  stats(): { sends: number; records: number; batches: number } {
    return { ...this.counters };
  }

  /** Flush everything pending (ignoring linger), wait for acks, disconnect. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      this.maybeDispatch();
      await new Promise<void>((resolve) => {
        if (this.isIdle()) resolve();
        else this.idleWaiters.push(resolve);
      });
      if (this.lingerTimer) clearTimeout(this.lingerTimer);
      if (this.connecting) {
        await this.connecting.catch(() => {});
        await this.producer.disconnect().catch(() => {});
      }
      this.onClosed(this);
    })();
    return this.closed;
  }

  private hasRoom(bytes: number): boolean {
    // A send larger than the whole bound may still go, alone: blocking it forever helps nobody.
    return this.bufferedBytes === 0 || this.bufferedBytes + bytes <= this.config.max_buffered_bytes;
  }

  private enqueue(topic: string, records: LogRecord[], sizes: number[], send: SendState): void {
    if (this.head === this.queue.length) this.oldestQueuedAt = Date.now();
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      this.queue.push({ topic, message: { key: r.key, value: r.value, headers: r.headers }, bytes: sizes[i], send });
      this.queuedBytes += sizes[i];
    }
    this.maybeDispatch();
  }

  private maybeDispatch(): void {
    if (this.inFlight || this.head === this.queue.length) {
      this.notifyIdle();
      return;
    }
    const waited = Date.now() - this.oldestQueuedAt;
    if (this.closing || this.queuedBytes >= this.config.max_batch_bytes || waited >= this.config.linger_ms) {
      if (this.lingerTimer) {
        clearTimeout(this.lingerTimer);
        this.lingerTimer = null;
      }
      void this.dispatch();
    } else if (!this.lingerTimer) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        this.maybeDispatch();
      }, this.config.linger_ms - waited);
    }
  }

  private async dispatch(): Promise<void> {
    this.inFlight = true;
    // Cut a batch from the head: at least one record, at most max_batch_bytes.
    const batch: QueuedRecord[] = [];
    let bytes = 0;
    while (this.head < this.queue.length) {
      const next = this.queue[this.head];
      if (batch.length > 0 && bytes + next.bytes > this.config.max_batch_bytes) break;
      batch.push(next);
      bytes += next.bytes;
      this.head++;
    }
    this.queuedBytes -= bytes;
    this.compact();
    if (this.head < this.queue.length) this.oldestQueuedAt = Date.now();

    this.counters.batches++;
    try {
      await this.connect();
      await this.producer.sendBatch({
        acks: -1,
        timeout: this.config.request_timeout_ms,
        compression: CompressionTypes.None,
        topicMessages: groupByTopic(batch),
      });
      for (const r of batch) {
        if (--r.send.remaining === 0 && !r.send.settled) {
          r.send.settled = true;
          r.send.resolve();
        }
      }
    } catch (err) {
      const connectFailed = !this.connected;
      const code = connectFailed ? 'LOG_ERR_KAFKA_CONNECT' : 'LOG_ERR_KAFKA_SEND';
      const error = kafkaLogError(code, `kafka send of ${batch.length} records failed: ${describeKafkaError(err)}`, err);
      for (const r of batch) settleFailed(r.send, error);
      this.abortQueued(error);
    } finally {
      this.bufferedBytes -= bytes;
      this.inFlight = false;
      this.admitWaiters();
      this.maybeDispatch();
    }
  }

  /** Fail every queued (not yet dispatched) record: see the ordering note at the top. */
  private abortQueued(cause: Error): void {
    const error = kafkaLogError(
      'LOG_ERR_KAFKA_SEND_ABORTED',
      'not sent: an earlier batch of this producer failed while these records were queued',
      cause,
    );
    let dropped = 0;
    for (let i = this.head; i < this.queue.length; i++) {
      dropped += this.queue[i].bytes;
      settleFailed(this.queue[i].send, error);
    }
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytes = 0;
    this.bufferedBytes -= dropped;
  }

  private admitWaiters(): void {
    while (this.roomWaiters.length > 0 && this.hasRoom(this.roomWaiters[0].bytes)) {
      const w = this.roomWaiters.shift()!;
      this.bufferedBytes += w.bytes;
      w.wake();
    }
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private connect(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.producer.connect().then(
        () => {
          this.connected = true;
        },
        (err: unknown) => {
          this.connecting = null; // let the next batch try again
          throw err;
        },
      );
    }
    return this.connecting;
  }

  private isIdle(): boolean {
    return !this.inFlight && this.head === this.queue.length && this.roomWaiters.length === 0;
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

function settleFailed(send: SendState, error: Error): void {
  if (send.settled) return;
  send.settled = true;
  send.reject(error);
}

/** One entry per topic, records in queue order (kafkajs keeps the order within a partition). */
function groupByTopic(batch: QueuedRecord[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const r of batch) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push(r.message);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

function invalidRecord(r: LogRecord | undefined): string | null {
  if (!r || typeof r !== 'object') return 'not an object';
  if (typeof r.key !== 'string') return 'key must be a string';
  if (!Buffer.isBuffer(r.value)) return 'value must be a Buffer';
  if (r.headers !== undefined) {
    if (r.headers === null || typeof r.headers !== 'object') return 'headers must be an object';
    for (const [k, v] of Object.entries(r.headers)) {
      if (typeof v !== 'string') return `header ${JSON.stringify(k)} must be a string`;
    }
  }
  return null;
}
