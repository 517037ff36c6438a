/**
 * Bench hook for `npm run bench:ingest` (the script lives with the other benches and prints the
 * figures; nothing here asserts timings). Two measurements:
 *  - `benchDecode`: the pure PostgreSQL decode transform over recorded-like frames (no I/O);
 *  - `benchIngest`: the whole pipeline (in-memory log → decode → rows → ClickHouse sink) into the
 *    given store, end to end until the last offset is committed.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { Topics } from '@vigil/eventlog/types';
import { startIngest } from './index.ts';
import { MemoryEventLog } from './testing/memory-log.ts';
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

export async function benchIngest(options: {
  store: ClickHouseClient;
  sessions?: number;
  statements_per_session?: number;
  max_batch_rows?: number;
  flush_interval_ms?: number;
}): Promise<BenchResult> {
  const sessions = options.sessions ?? 20;
  const per = Math.max(1, Math.floor((options.statements_per_session ?? 500) / 2));
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  let total = 0;
  const group = `bench-${Date.now()}`;
  for (let s = 0; s < sessions; s++) {
    const rec = recordSession(`bench-${group}-${s}`, Array.from({ length: per }, (_, i) => conversation(i)).flat());
    log.append(Topics.frames, rec.records);
    total += rec.records.length;
  }
  const t0 = performance.now();
  const handle = await startIngest({
    config: { ingest: { group_id: group, max_batch_rows: options.max_batch_rows ?? 10_000, flush_interval_ms: options.flush_interval_ms ?? 0 } },
    log,
    store: options.store,
  });
  while (log.committedOffset(group, Topics.frames) < total) await new Promise((r) => setTimeout(r, 2));
  const elapsed = performance.now() - t0;
  await handle.stop();
  return { events: total, queries: handle.stats.pipeline.queries, elapsed_ms: elapsed, events_per_s: (total / elapsed) * 1000 };
}
