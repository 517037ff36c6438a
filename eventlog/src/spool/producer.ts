/**
 * SpoolingProducer: the gateway's producer in distributed mode. Records go to the primary (Kafka);
 * while the primary fails with retriable errors they go to a local durable log (the spool) and a
 * forwarder drains the spool to the primary, in order, once it is back.
 *
 * Ordering (per key, per topic) is kept by a single pump: calls queue in call order; the pump takes
 * everything queued, and in 'direct' mode sends it to the primary with one send per topic (merged),
 * at most one batch in flight; in 'spooling' mode appends it to the spool with one local send. A
 * retriable failure switches to 'spooling' for that batch's failed calls and every later call. The
 * pump returns to 'direct' only when the forwarder has acknowledged everything ever spooled, and
 * only between batches (so nothing spooled can be overtaken by a direct send).
 *
 * Delivery to the primary is at-least-once: the forwarder commits its spool offset after the
 * primary acked, so a crash (or a batch that fails half-way) re-sends records. Consumers downstream
 * are idempotent by (session_id, seq) (DESIGN.md).
 *
 * Spool records carry the original topic in the reserved header `vigil.spool.topic`, removed again
 * before forwarding (a caller header of that name is refused).
 */
import { LogError, type LogRecord, type Producer } from '../types.ts';
import { LocalEventLog } from '../local/log.ts';
import type { LocalConsumer } from '../local/consumer.ts';
import { logError } from '../local/errors.ts';

export const SPOOL_TOPIC = 'spool';
export const SPOOL_TOPIC_HEADER = 'vigil.spool.topic';
export const FORWARDER_GROUP = 'vigil.spool.forwarder';

export interface SpoolingProducerOptions {
  /** Close the primary producer in close(). Default true (we were handed it to wrap). */
  closePrimary?: boolean;
  /** First retry delay of the forwarder while the primary is down (doubles to 5 s). Default 200 ms. */
  retryBackoffMs?: number;
  /** Max records per forwarded batch. Default 1000. */
  forwardBatchRecords?: number;
}

/** 'direct': to the primary. 'spooling': to the local spool, drained by the forwarder. */
export type SpoolMode = 'direct' | 'spooling';

interface Call {
  topic: string;
  records: LogRecord[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SpoolingProducer implements Producer {
  private mode: SpoolMode = 'direct';
  private queue: Call[] = [];
  private pumping: Promise<void> | null = null;
  private closed = false;
  /** Offset after the last record appended to the spool / acknowledged by the primary. */
  private spoolEnd: number;
  private forwardedEnd: number;
  private forwarder: LocalConsumer | null = null;
  readonly stats = { direct: 0, spooled: 0, forwarded: 0, switches: 0 };

  private constructor(
    private readonly primary: Producer,
    private readonly spool: LocalEventLog,
    private readonly ownsSpool: boolean,
    private readonly options: SpoolingProducerOptions,
    spoolEnd: number,
    forwardedEnd: number,
  ) {
    this.spoolEnd = spoolEnd;
    this.forwardedEnd = forwardedEnd;
    // Restart mid-outage: what is left in the spool must reach the primary before direct traffic.
    if (forwardedEnd < spoolEnd) this.mode = 'spooling';
  }

  /**
   * Wrap `primary` with a spool: either a config for a LocalEventLog this producer opens (and closes)
   * or an already open LocalEventLog.
   */
  static async open(primary: Producer, spool: unknown, options: SpoolingProducerOptions = {}): Promise<SpoolingProducer> {
    const owns = !(spool instanceof LocalEventLog);
    const log = spool instanceof LocalEventLog ? spool : await LocalEventLog.open(spool);
    try {
      await log.ensureTopics([SPOOL_TOPIC]);
      const end = Number(log.usage().topics[SPOOL_TOPIC]!.endOffset);
      const committed = await log.committedOffset(FORWARDER_GROUP, SPOOL_TOPIC);
      const start = Number(log.usage().topics[SPOOL_TOPIC]!.startOffset);
      const p = new SpoolingProducer(primary, log, owns, options, end, committed === undefined ? start : Number(committed));
      await p.startForwarder();
      return p;
    } catch (err) {
      if (owns) await log.close();
      throw err;
    }
  }

  get currentMode(): SpoolMode {
    return this.mode;
  }

  /** Records spooled but not yet acknowledged by the primary. */
  get backlog(): number {
    return this.spoolEnd - this.forwardedEnd;
  }

  send(topic: string, records: LogRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(logError('LOG_ERR_CLOSED', 'spooling producer closed'));
    for (const r of records) {
      if (r.headers && SPOOL_TOPIC_HEADER in r.headers) {
        return Promise.reject(logError('LOG_ERR_INVALID_RECORD', `header ${SPOOL_TOPIC_HEADER} is reserved`));
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ topic, records, resolve, reject });
      if (!this.pumping) this.pumping = this.pump();
    });
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        if (this.mode === 'spooling' && this.forwardedEnd >= this.spoolEnd) {
          this.mode = 'direct';
          this.stats.switches++;
        }
        if (this.mode === 'direct') await this.direct(batch);
        else await this.toSpool(batch);
      }
    } finally {
      this.pumping = null;
    }
  }

  private async direct(batch: Call[]): Promise<void> {
    const byTopic = new Map<string, Call[]>();
    for (const c of batch) {
      const list = byTopic.get(c.topic);
      if (list) list.push(c);
      else byTopic.set(c.topic, [c]);
    }
    const failed = new Set<Call>();
    await Promise.all([...byTopic].map(([topic, calls]) => this.directTopic(topic, calls, failed)));
    if (failed.size > 0) {
      if (this.mode === 'direct') this.stats.switches++;
      this.mode = 'spooling';
      await this.toSpool(batch.filter((c) => failed.has(c)));
    }
  }

  /** Send one topic's calls merged; on a retriable failure add them (in order) to `failed`. */
  private async directTopic(topic: string, calls: Call[], failed: Set<Call>): Promise<void> {
    try {
      await this.primary.send(topic, calls.length === 1 ? calls[0]!.records : calls.flatMap((c) => c.records));
      this.stats.direct += calls.reduce((n, c) => n + c.records.length, 0);
      for (const c of calls) c.resolve();
      return;
    } catch (err) {
      if (retriable(err)) {
        for (const c of calls) failed.add(c);
        return;
      }
      if (calls.length === 1) {
        calls[0]!.reject(err);
        return;
      }
    }
    // A non-retriable error for a merged send: find the culprit(s) call by call, so one bad call
    // does not fail the others it was merged with.
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i]!;
      try {
        await this.primary.send(topic, c.records);
        this.stats.direct += c.records.length;
        c.resolve();
      } catch (err) {
        if (retriable(err)) {
          for (const rest of calls.slice(i)) failed.add(rest);
          return;
        }
        c.reject(err);
      }
    }
  }

  private async toSpool(calls: Call[]): Promise<void> {
    if (calls.length === 0) return;
    const records: LogRecord[] = [];
    for (const c of calls) {
      for (const r of c.records) {
        records.push({ key: r.key, value: r.value, headers: { ...r.headers, [SPOOL_TOPIC_HEADER]: c.topic } });
      }
    }
    try {
      await this.spool.send(SPOOL_TOPIC, records);
    } catch (err) {
      // The spool refused (full and fail-closed, I/O error): the caller must know nothing was kept.
      for (const c of calls) c.reject(err);
      return;
    }
    this.spoolEnd += records.length;
    this.stats.spooled += records.length;
    for (const c of calls) c.resolve();
  }

  private async startForwarder(): Promise<void> {
    this.forwarder = this.spool.consumer({
      groupId: FORWARDER_GROUP,
      topics: [SPOOL_TOPIC],
      maxBatchRecords: this.options.forwardBatchRecords ?? 1000,
      retryBackoffMs: this.options.retryBackoffMs ?? 200,
      onError: (err) => {
        process.stderr.write(`vigil spool forwarder stopped: ${err.code} ${err.message}\n`);
      },
    });
    await this.forwarder.run(async (batch) => {
      // Consecutive runs of one topic, in spool order: one primary send per run.
      const recs = batch.records;
      for (let i = 0; i < recs.length; ) {
        const topic = recs[i]!.headers?.[SPOOL_TOPIC_HEADER] ?? '';
        const run: LogRecord[] = [];
        for (; i < recs.length && recs[i]!.headers?.[SPOOL_TOPIC_HEADER] === topic; i++) {
          const { [SPOOL_TOPIC_HEADER]: _topic, ...headers } = recs[i]!.headers!;
          run.push(Object.keys(headers).length > 0 ? { key: recs[i]!.key, value: recs[i]!.value, headers } : { key: recs[i]!.key, value: recs[i]!.value });
        }
        if (topic === '') throw logError('LOG_ERR_CORRUPT', 'spool record without its topic header');
        // A rejection (primary still down) makes the consumer redeliver this batch after a backoff.
        await this.primary.send(topic, run);
        this.stats.forwarded += run.length;
      }
      this.forwardedEnd = Number(recs[recs.length - 1]!.offset) + 1;
    });
  }

  /** Stop taking sends, finish the pump, stop the forwarder (the spool keeps what is left). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.pumping) await this.pumping;
    await this.forwarder?.stop();
    if (this.ownsSpool) await this.spool.close();
    if (this.options.closePrimary ?? true) await this.primary.close();
  }
}

function retriable(err: unknown): boolean {
  return err instanceof LogError && err.retriable;
}

/** Entry point used by createGatewayProducer (eventlog/src/index.ts). */
export function openSpoolingProducer(primary: Producer, spoolConfig: unknown, options?: SpoolingProducerOptions): Promise<SpoolingProducer> {
  return SpoolingProducer.open(primary, spoolConfig, options);
}
