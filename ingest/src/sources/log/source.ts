/**
 * Log source: adapts an `EventLog` consumer to the pipeline. Each consumer batch (one
 * topic-partition, in order) is decoded into chained events and handed to the pipeline; the
 * handler's promise is the pipeline's, so the log commits the batch's offsets only after the
 * pipeline resolved, i.e. after ClickHouse acknowledged its rows (end-to-end acknowledgement).
 *
 * A record that is not a decodable chained event is logged (topic/partition/offset, never bytes),
 * counted and skipped: one corrupt record must not stall its partition forever.
 */
import { decode, type ChainedEvent } from '@vigil/schemas';
import type { Consumer, ConsumerBatch, EventLog } from '@vigil/eventlog/types';
import { IngestError, type Logger } from '../../errors.ts';
import type { DataPathYield } from './yield.ts';

export interface LogSourceOptions {
  group_id: string;
  topics: readonly string[];
  /** Upper bound on records per batch asked of the consumer. */
  max_batch_records: number;
}

export interface SourceBatch {
  topic: string;
  partition: number;
  /** Offsets of the batch's first and last record (decimal strings). */
  first_offset: string;
  last_offset: string;
  records: number;
  events: ChainedEvent[];
}

export interface SourceStats {
  batches: number;
  records: number;
  invalid_records: number;
  handler_failures: number;
}

/** Decode a consumer batch; undecodable records are reported through `onInvalid` and skipped. */
export function decodeBatch(batch: ConsumerBatch, onInvalid: (offset: string, error: unknown) => void): SourceBatch {
  const events: ChainedEvent[] = [];
  for (const record of batch.records) {
    try {
      events.push(decode(record.value));
    } catch (err) {
      onInvalid(record.offset, err);
    }
  }
  return {
    topic: batch.topic,
    partition: batch.partition,
    first_offset: batch.records[0]?.offset ?? '',
    last_offset: batch.records.at(-1)?.offset ?? '',
    records: batch.records.length,
    events,
  };
}

export class LogSource {
  private consumer: Consumer | undefined;
  private stopping = false;
  readonly stats: SourceStats = { batches: 0, records: 0, invalid_records: 0, handler_failures: 0 };

  constructor(
    private readonly log: EventLog,
    private readonly options: LogSourceOptions,
    private readonly logger: Logger,
    /** When set, each batch first waits for the gateway beside this ingest to be less busy. */
    private readonly gate?: DataPathYield,
  ) {}

  async start(handle: (batch: SourceBatch) => Promise<void>): Promise<void> {
    await this.log.ensureTopics([...this.options.topics]);
    this.consumer = this.log.consumer({
      groupId: this.options.group_id,
      topics: [...this.options.topics],
      fromBeginning: true,
      maxBatchRecords: this.options.max_batch_records,
    });
    await this.consumer.run(async (batch) => {
      if (this.stopping) throw new IngestError('ING_ERR_STOPPED', 'ingest is stopping');
      // The batch is read but not processed (nor acknowledged) while ingest defers; the log
      // reads nothing more for this consumer meanwhile.
      await this.gate?.wait();
      if (this.stopping) throw new IngestError('ING_ERR_STOPPED', 'ingest is stopping');
      this.stats.batches++;
      this.stats.records += batch.records.length;
      const decoded = decodeBatch(batch, (offset, error) => {
        this.stats.invalid_records++;
        this.logger.error(
          { code: 'ING_ERR_RECORD_INVALID', topic: batch.topic, partition: batch.partition, offset, err: (error as Error).message },
          'ING_ERR_RECORD_INVALID: skipping a record that is not a chained event',
        );
      });
      try {
        await handle(decoded);
        this.gate?.batchDone();
      } catch (err) {
        this.stats.handler_failures++;
        throw err;
      }
    });
  }

  /** Stop after the in-flight batch (the consumer commits what was acknowledged). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.gate?.release();
    await this.consumer?.stop();
  }
}
