/**
 * The event log: one interface, two implementations (local durable segment log, Kafka).
 *
 * Gateway and ingest code only see these types; `createEventLog(config)` picks the
 * implementation. Records are opaque bytes here — the envelope codec lives in `@vigil/schemas`.
 */
import type { RecordRun } from './run.ts';

/** One record as produced. `key` is the session id: records with the same key stay ordered. */
export interface LogRecord {
  key: string;
  value: Buffer;
  /** Small string metadata (e.g. event `type`), carried as Kafka headers / stored beside the value. */
  headers?: Record<string, string>;
}

/** A record as consumed, with its position. Offsets are decimal strings (Kafka's convention). */
export interface ConsumedRecord extends LogRecord {
  topic: string;
  partition: number;
  offset: string;
  /** Append time, ms since epoch. */
  timestamp: number;
}

/** A batch handed to a consumer handler: records of one topic-partition, in order. */
export interface ConsumerBatch {
  topic: string;
  partition: number;
  records: ConsumedRecord[];
}

export interface Producer {
  /**
   * Append records to `topic`. Resolves once the records are durable under the log's policy
   * (local: fsync'd per the fsync policy; Kafka: acknowledged by all in-sync replicas).
   * Rejects with a `LogError`; callers decide between retry (error.retriable) and fail-closed.
   * Order of records with the same key is preserved across calls from one producer.
   * Record values belong to the caller again once the promise settles (the gateway's EventSink
   * reuses the memory of sent records): a producer copies whatever it keeps beyond that.
   */
  send(topic: string, records: LogRecord[]): Promise<void>;
  /**
   * The same for records packed as a run (run.ts), where the producer takes them that way (the
   * local log: no object per record). Same durability, order and ownership rules as `send`.
   */
  sendRun?(topic: string, run: RecordRun): Promise<void>;
  /** Flush everything pending and release resources. */
  close(): Promise<void>;
}

export interface ConsumerOptions {
  /** Consumer group: offsets are committed per group, each record goes to one member. */
  groupId: string;
  topics: string[];
  /** Where a group with no committed offset starts. Default true (audit data: read everything). */
  fromBeginning?: boolean;
  /** Upper bound on records per handler call. */
  maxBatchRecords?: number;
}

/**
 * Handler contract (end-to-end acknowledgement): the offsets of a batch are committed only
 * after the returned promise resolves. If it rejects, nothing of the batch is committed and the
 * batch is delivered again (after a retry delay for retriable errors).
 */
export type BatchHandler = (batch: ConsumerBatch) => Promise<void>;

export interface Consumer {
  /** Start consuming; resolves once running (delivery continues in the background). */
  run(handler: BatchHandler): Promise<void>;
  /** Stop after the in-flight batch; commits what was acknowledged. */
  stop(): Promise<void>;
}

export interface EventLog {
  readonly kind: 'local' | 'kafka';
  /** Create topics if missing (Kafka: with configured partitions/replication; local: directories). */
  ensureTopics(topics: string[]): Promise<void>;
  producer(): Producer;
  consumer(options: ConsumerOptions): Consumer;
  close(): Promise<void>;
}

/** Errors carry a stable code and whether retrying can help. */
export class LogError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LogError';
  }
}

/** Topic names (distributed mode). Partitioned by session id so a session stays ordered. */
export const Topics = {
  /** The gateway's per-session chained stream: frames and session lifecycle/auth events. */
  frames: 'vigil.frames.v1',
  sessions: 'vigil.sessions.v1',
  /** Derived events (decoded queries, …) produced by ingest. */
  events: 'vigil.events.v1',
  alerts: 'vigil.alerts.v1',
  approvals: 'vigil.approvals.v1',
  ocsf: 'vigil.ocsf.v1',
} as const;
