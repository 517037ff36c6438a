/**
 * ClickHouse sink: batched, idempotent writes with end-to-end acknowledgement.
 *
 * `write(rows)` resolves only once every row of that call is acknowledged by ClickHouse, so the
 * log handler that awaits it commits its offset after the store has the batch (Vector's model).
 * Rows of concurrent writes (other partitions) that arrive within `flush_interval_ms` share one
 * insert per table; inserts are cut at `max_batch_rows`. The queue is bounded by construction:
 * each log partition has at most one handler (one write) in flight, so callers are backpressured.
 *
 * Idempotency: every table is a ReplacingMergeTree keyed by (session_id, seq) (sessions: by
 * session_id, version = seq), so a redelivered batch re-inserts identical rows that collapse.
 * Insert order inside a flush: events, queries, sessions — a `sessions` row that says "ended"
 * is only written once the session's events are.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { IngestError, Logger } from '../../errors.ts';
import { withRetry } from './retry.ts';
import { emptyRowBatch, rowCount, type RowBatch } from './rows.ts';

export interface ClickHouseSinkOptions {
  max_batch_rows: number;
  flush_interval_ms: number;
  retry_backoff_ms: number;
  retry_max_ms: number;
}

export interface SinkStats {
  flushes: number;
  inserts: number;
  rows_written: number;
  store_retries: number;
  store_errors: number;
}

interface Waiter {
  rows: RowBatch;
  resolve: () => void;
  reject: (err: IngestError) => void;
}

const TABLES = ['events', 'queries', 'sessions', 'terminal', 'terminal_snapshots', 'commands'] as const;

export class ClickHouseSink {
  private waiting: Waiter[] = [];
  private waitingRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private closing = false;
  readonly stats: SinkStats = { flushes: 0, inserts: 0, rows_written: 0, store_retries: 0, store_errors: 0 };

  constructor(
    private readonly client: ClickHouseClient,
    private readonly options: ClickHouseSinkOptions,
    private readonly logger: Logger,
  ) {}

  /** Queue rows; resolves when ClickHouse acknowledged all of them, rejects with an IngestError. */
  write(rows: RowBatch): Promise<void> {
    if (rowCount(rows) === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ rows, resolve, reject });
      this.waitingRows += rowCount(rows);
      if (this.options.flush_interval_ms === 0 || this.waitingRows >= this.options.max_batch_rows || this.closing) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.options.flush_interval_ms);
    });
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const waiters = this.waiting;
    if (waiters.length === 0) return;
    this.waiting = [];
    this.waitingRows = 0;
    const merged = emptyRowBatch();
    for (const w of waiters) for (const t of TABLES) for (const r of w.rows[t]) (merged[t] as unknown[]).push(r);
    const p = this.insertAll(merged).then(
      () => waiters.forEach((w) => w.resolve()),
      (err: IngestError) => waiters.forEach((w) => w.reject(err)),
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async insertAll(batch: RowBatch): Promise<void> {
    this.stats.flushes++;
    try {
      for (const table of TABLES) {
        const rows = batch[table];
        for (let i = 0; i < rows.length; i += this.options.max_batch_rows) {
          const chunk: object[] = rows.slice(i, i + this.options.max_batch_rows);
          await withRetry(`insert into ${table} (${chunk.length} rows)`, () => this.client.insert({ table, values: chunk, format: 'JSONEachRow' }), {
            retry_backoff_ms: this.options.retry_backoff_ms,
            retry_max_ms: this.options.retry_max_ms,
            stopping: () => this.closing,
            onRetry: (error, attempt, delay) => {
              this.stats.store_retries++;
              this.logger.warn({ code: error.code, table, attempt, delay_ms: delay, err: error.message }, `${error.code}: insert failed, retrying`);
            },
          });
          this.stats.inserts++;
          this.stats.rows_written += chunk.length;
        }
      }
    } catch (err) {
      this.stats.store_errors++;
      const e = err as IngestError;
      this.logger.error({ code: e.code, retriable: e.retriable, err: e.message }, `${e.code}: batch not stored; the log will redeliver it`);
      throw err;
    }
  }

  /** Flush what is queued and wait for every insert in flight. */
  async flush(): Promise<void> {
    this.flushNow();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Stop retrying (in-flight retries give up with ING_ERR_STOPPED) after flushing what is queued. */
  async close(): Promise<void> {
    this.closing = true;
    await this.flush();
  }
}
