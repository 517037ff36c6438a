/**
 * The bulk-read window's state, read back from a real chDB: rows the batch's window can still slide
 * past come back one by one, the rest as one sum per identity, and the sliding sum at every instant
 * of the batch equals the sum over every stored and noted row in (t - window, t].
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
import { useChdbStore } from '../../testing/store.ts';
import { chTime } from '../../sinks/clickhouse/rows.ts';
import { BatchContext, loadState } from './state.ts';

let store: ClickHouseClient;
useChdbStore('vigil-detect-state-', (s) => (store = s));

const S = 1e6;
const WINDOW = 300 * S;
const FROM = Date.UTC(2026, 0, 12, 10, 0, 0) * 1000;

test('window state: one sum for rows that stay in the window, single rows for those that leave; sliding sums exact', async () => {
  // One stored row per second for 400 s before the batch (rows = 1, 2, 3, … so every row counts
  // differently), some with rows = 0 (not read back), and another identity's rows. The rows at the
  // boundaries (from - window, and cut = to - window) count, so an off-by-one at either shows.
  const stored: { time: number; rows: number }[] = [];
  const values: Record<string, unknown>[] = [];
  for (let i = 0; i < 400; i++) {
    const time = FROM - 400 * S + i * S;
    const rows = i % 10 === 3 ? 0 : i + 1;
    stored.push({ time, rows });
    values.push({ session_id: 's-w', seq: i, time: chTime(time), sub: 'w', rows });
    values.push({ session_id: 's-other', seq: i, time: chTime(time), sub: 'other', rows: 1_000_000 });
  }
  await store.insert({ table: 'queries', values, format: 'JSONEachRow' });

  // A batch spanning 120 s: its window slides past the rows stored in (from - 300 s, to - 300 s].
  const to = FROM + 120 * S;
  const state = await loadState(store, { subs: ['w'], groups: [], from_us: FROM, to_us: to, lookback_us: 30 * 86_400 * S, window_us: WINDOW, suppression_us: 3600 * S });
  const list = state.window.get('w')!;
  const leaving = stored.filter((r) => r.rows > 0 && r.time > FROM - WINDOW && r.time <= to - WINDOW);
  assert.equal(list.length, leaving.length + 1, 'single rows only for those that can leave, plus one sum');
  assert.deepEqual(list.slice(0, -1), leaving, 'the leaving rows, in time order');
  const staying = stored.filter((r) => r.rows > 0 && r.time > to - WINDOW && r.time < FROM);
  assert.equal(list.at(-1)!.rows, staying.reduce((a, r) => a + r.rows, 0));
  assert.ok(!state.window.has('other'), 'only the batch identities');

  // The sliding sum at instants through the batch, with the batch's own rows noted as it goes.
  const ctx = new BatchContext(state, () => new Map());
  const noted: { time: number; rows: number }[] = [];
  // Every 7 s, and the batch's last instant, where the row stamped exactly `cut` leaves the window
  // and the sum (stamped just after it) must stay.
  const instants: number[] = [];
  for (let t = FROM; t < to; t += 7 * S) instants.push(t);
  instants.push(to);
  assert.ok(stored.some((r) => r.time === to - WINDOW && r.rows > 0) && stored.some((r) => r.time === FROM - WINDOW && r.rows > 0));
  for (const t of instants) {
    ctx.noteRows('w', t, 5);
    noted.push({ time: t, rows: 5 });
    const want = [...stored, ...noted].filter((r) => r.time > t - WINDOW && r.time <= t).reduce((a, r) => a + r.rows, 0);
    assert.equal(ctx.windowRows('w', t, WINDOW), want, `window sum at +${(t - FROM) / S} s`);
  }
});

test('window state: a batch longer than the window reads every row before it one by one (no sum)', async () => {
  await store.command({ query: 'TRUNCATE TABLE queries' });
  const values = Array.from({ length: 50 }, (_, i) => ({ session_id: 's-long', seq: i, time: chTime(FROM - 50 * S + i * S), sub: 'w', rows: 1 + i }));
  await store.insert({ table: 'queries', values, format: 'JSONEachRow' });
  const state = await loadState(store, { subs: ['w'], groups: [], from_us: FROM, to_us: FROM + 2 * WINDOW, lookback_us: 30 * 86_400 * S, window_us: WINDOW, suppression_us: 3600 * S });
  assert.deepEqual(state.window.get('w'), values.map((v, i) => ({ time: FROM - 50 * S + i * S, rows: 1 + i })));
});
