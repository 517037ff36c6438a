/**
 * A minimal in-memory `EventLog` for ingest's pipeline tests and the ingest bench: one partition
 * per topic, committed offsets per group, the handler contract of eventlog/src/types.ts (commit
 * only after the handler resolves; a rejection redelivers the same batch after `retry_delay_ms`).
 * `failNextCommits(n)` simulates a log that loses the commit after a successful handler (Kafka
 * rebalance), so the same batch is delivered again. Not durable; not for production.
 */
import type { BatchHandler, ConsumedRecord, Consumer, ConsumerOptions, EventLog, LogRecord, Producer } from '@vigil/eventlog/types';
import { LogError } from '@vigil/eventlog/types';

export class MemoryEventLog implements EventLog {
  readonly kind = 'local' as const;
  private readonly topics = new Map<string, ConsumedRecord[]>();
  private readonly committed = new Map<string, number>();
  private readonly wakers = new Set<() => void>();
  private lostCommits = 0;
  /** Every batch delivered (including redeliveries), for assertions. */
  readonly deliveries: { topic: string; first: string; last: string; ok?: boolean }[] = [];

  constructor(private readonly options: { retry_delay_ms?: number } = {}) {}

  async ensureTopics(topics: string[]): Promise<void> {
    for (const t of topics) if (!this.topics.has(t)) this.topics.set(t, []);
  }

  failNextCommits(n: number): void {
    this.lostCommits += n;
  }

  /** Committed offset (next to read) of a group on a topic. */
  committedOffset(groupId: string, topic: string): number {
    return this.committed.get(`${groupId}\0${topic}`) ?? 0;
  }

  append(topic: string, records: LogRecord[]): void {
    const list = this.topics.get(topic);
    if (!list) throw new LogError('LOG_ERR_UNKNOWN_TOPIC', `unknown topic ${topic}`, false);
    for (const r of records) list.push({ ...r, topic, partition: 0, offset: String(list.length), timestamp: Date.now() });
    for (const wake of this.wakers) wake();
  }

  producer(): Producer {
    return {
      send: async (topic, records) => this.append(topic, records),
      close: async () => {},
    };
  }

  consumer(options: ConsumerOptions): Consumer {
    let running = false;
    let loop: Promise<void> | undefined;
    let wake: (() => void) | undefined;
    const max = options.maxBatchRecords ?? 500;
    const idle = (): Promise<void> =>
      new Promise<void>((resolve) => {
        const w = (): void => {
          this.wakers.delete(w);
          resolve();
        };
        wake = w;
        this.wakers.add(w);
      });
    const step = async (handler: BatchHandler): Promise<boolean> => {
      let delivered = false;
      for (const topic of options.topics) {
        const list = this.topics.get(topic) ?? [];
        const key = `${options.groupId}\0${topic}`;
        const from = this.committed.get(key) ?? 0;
        if (from >= list.length) continue;
        const records = list.slice(from, from + max);
        const entry: (typeof this.deliveries)[number] = { topic, first: records[0]!.offset, last: records.at(-1)!.offset };
        this.deliveries.push(entry);
        delivered = true;
        try {
          await handler({ topic, partition: 0, records });
          entry.ok = true;
          if (this.lostCommits > 0) this.lostCommits--;
          else this.committed.set(key, from + records.length);
        } catch (err) {
          entry.ok = false;
          const retriable = (err as { retriable?: boolean }).retriable !== false;
          await new Promise((r) => setTimeout(r, (this.options.retry_delay_ms ?? 10) * (retriable ? 1 : 5)));
        }
      }
      return delivered;
    };
    return {
      run: async (handler) => {
        running = true;
        loop = (async () => {
          while (running) if (!(await step(handler)) && running) await idle();
        })();
      },
      stop: async () => {
        running = false;
        wake?.();
        await loop;
      },
    };
  }

  async close(): Promise<void> {}
}
