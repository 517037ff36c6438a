/**
 * Bench hook for `npm run bench:ingest` (the script lives with the other benches and prints the
 * figures; nothing here asserts timings). Two measurements:
 *  - `benchDecode`: the pure PostgreSQL decode transform over recorded-like frames (no I/O);
 *  - `benchIngest`: the whole pipeline (local log on disk → decode → mask → detect → ClickHouse)
 *    into the given store, end to end until the last offset is committed, next to the raw insert
 *    rate of the very rows it wrote.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Topics } from '@vigil/eventlog/types';
import { startIngest } from './index.ts';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { recordSession } from './testing/sessions.ts';
import { decodeFrame, newDecoderState } from './transforms/decode/pg/decoder.ts';
import * as m from './transforms/decode/pg/fixtures/builders.ts';

/** One simple and one extended statement with their responses (15 frames, 2 query events). */
function conversation(i: number): m.Step[] {
  return [
    m.Query(`select id, name from users where id = ${i}`), m.RowDescription(['id', 'name']), m.DataRow([String(i), 'user']), m.CommandComplete('SELECT 1'), m.ReadyForQuery(),
    m.Parse('', 'update users set seen = now() where id = $1'), m.Bind('', '', [String(i)]), m.Describe('P', ''), m.Execute(), m.Sync(),
    m.ParseComplete(), m.BindComplete(), m.NoData(), m.CommandComplete('UPDATE 1'), m.ReadyForQuery(),
  ];
}

export interface BenchResult {
  events: number;
  queries: number;
  elapsed_ms: number;
  events_per_s: number;
}

export function benchDecode(options: { statements?: number } = {}): BenchResult {
  const n = Math.max(1, Math.floor((options.statements ?? 200_000) / 2));
  const frames = m.frames(Array.from({ length: 64 }, (_, i) => conversation(i)).flat());
  const state = newDecoderState();
  const counters = { orphans: 0, ignored: 0 };
  let queries = 0;
  let events = 0;
  const t0 = performance.now();
  for (let done = 0; done < n; done += 64) {
    for (const f of frames) queries += decodeFrame(state, 'bench', f, counters).length;
    events += frames.length;
  }
  const elapsed = performance.now() - t0;
  return { events, queries, elapsed_ms: elapsed, events_per_s: (events / elapsed) * 1000 };
}

export interface IngestBenchResult {
  /** Log records (chained events) ingested. */
  events: number;
  queries: number;
  alerts: number;
  /** log → decode → mask → detect → ClickHouse, until the last offset is committed. */
  pipeline: { elapsed_ms: number; events_per_s: number };
  /** The same rows (every insert ingest made, same tables, batches and format), inserted directly. */
  raw: { elapsed_ms: number; events_per_s: number; rows: number; inserts: number };
  rows_by_table: Record<string, number>;
}

/**
 * The whole pipeline over a real local log on disk and the given store, with masking at rest
 * (`policy_file`) and the detectors on; every insert ingest makes is captured, then the tables are
 * emptied and the captured inserts are replayed against the same store: the raw insert rate of the
 * same rows, measured in the same run.
 */
export async function benchIngest(options: {
  store: ClickHouseClient;
  /** An empty directory for the local log. */
  log_dir: string;
  policy_file?: string;
  sessions?: number;
  statements_per_session?: number;
  max_batch_rows?: number;
}): Promise<IngestBenchResult> {
  const sessions = options.sessions ?? 20;
  const per = Math.max(1, Math.floor((options.statements_per_session ?? 500) / 2));
  const log = await LocalEventLog.open({ dir: options.log_dir });
  await log.ensureTopics([Topics.frames]);
  const producer = log.producer();
  let total = 0;
  const group = `bench-${Date.now()}`;
  for (let s = 0; s < sessions; s++) {
    const rec = recordSession(`bench-${group}-${s}`, Array.from({ length: per }, (_, i) => conversation(i)).flat(), { sub: `agent-${s % 5}` });
    await producer.send(Topics.frames, rec.records);
    total += rec.records.length;
  }
  await producer.close();

  const inserts: { table: string; values: unknown[] }[] = [];
  const store = options.store;
  const capturing = new Proxy(store, {
    get(target, prop) {
      if (prop === 'insert') {
        return (params: { table: string; values: unknown[] }) => {
          inserts.push({ table: params.table, values: [...params.values] });
          return target.insert(params as never);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as ClickHouseClient;

  const t0 = performance.now();
  const handle = await startIngest({
    config: { ingest: { group_id: group, max_batch_rows: options.max_batch_rows ?? 10_000, flush_interval_ms: 0, masking: options.policy_file ? { policy_file: options.policy_file } : {} } as never },
    log,
    store: capturing,
  });
  while (Number((await log.committedOffset(group, Topics.frames)) ?? 0) < total) await new Promise((r) => setTimeout(r, 2));
  const pipelineMs = performance.now() - t0;
  await handle.stop();
  await log.close();

  // The same rows, straight into emptied tables (materialized views fire again, as they did).
  const rowsByTable: Record<string, number> = {};
  for (const i of inserts) rowsByTable[i.table] = (rowsByTable[i.table] ?? 0) + i.values.length;
  for (const table of new Set([...Object.keys(rowsByTable), 'detect_hourly', 'detect_facts'])) await store.command({ query: `TRUNCATE TABLE ${table}` });
  const t1 = performance.now();
  for (const i of inserts) await store.insert({ table: i.table, values: i.values, format: 'JSONEachRow' });
  const rawMs = performance.now() - t1;
  const rows = Object.values(rowsByTable).reduce((a, b) => a + b, 0);
  return {
    events: total,
    queries: handle.stats.pipeline.queries,
    alerts: handle.stats.detect?.alerts ?? 0,
    pipeline: { elapsed_ms: pipelineMs, events_per_s: (total / pipelineMs) * 1000 },
    raw: { elapsed_ms: rawMs, events_per_s: (total / rawMs) * 1000, rows, inserts: inserts.length },
    rows_by_table: rowsByTable,
  };
}
