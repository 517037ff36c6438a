/** ClickHouse sink against REAL chDB (its own data path: one per test file/process). */
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
import { openStore, releaseStore } from '../../store/client.ts';
import { useChdbStore } from '../../testing/store.ts';
import { IngestError, silentLogger } from '../../errors.ts';
import { ClickHouseSink } from './sink.ts';
import { classifyStoreError } from './retry.ts';
import { chTime, emptyRowBatch, parseChTime, type EventRow, type RowBatch } from './rows.ts';

let store: ClickHouseClient;
const opts = { max_batch_rows: 1000, flush_interval_ms: 0, retry_backoff_ms: 5, retry_max_ms: 5_000 };

useChdbStore('vigil-ingest-sink-', (s) => (store = s));
beforeEach(async () => {
  for (const t of ['sessions', 'events', 'queries']) await store.command({ query: `TRUNCATE TABLE ${t}` });
});

function events(session: string, n: number): RowBatch {
  const b = emptyRowBatch();
  for (let seq = 0; seq < n; seq++) {
    const row: EventRow = {
      session_id: session, seq, event_id: `${session}-${seq}`, type: 'frame', time: chTime(1_763_700_000_000_000 + seq),
      sub: 'alice', target_id: 't', direction: 'c2s', msg_type: 'Q', size: 10, prev_hash: '', hash: '', detail: '',
    };
    b.events.push(row);
  }
  return b;
}

async function count(query: string): Promise<number> {
  return Number((await (await store.query({ query, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
}

/** A client whose inserts fail `times` times with `error`, and can be held at a gate. */
function wrap(error: () => unknown, times: number) {
  const calls = { failed: 0, ok: 0 };
  let gate: Promise<void> = Promise.resolve();
  const client = new Proxy(store, {
    get(target, prop, recv) {
      if (prop !== 'insert') return Reflect.get(target, prop, recv) as unknown;
      return async (args: Parameters<ClickHouseClient['insert']>[0]) => {
        if (calls.failed < times) {
          calls.failed++;
          throw error();
        }
        await gate;
        const r = await target.insert(args);
        calls.ok++;
        return r;
      };
    },
  });
  return { client, calls, hold: (p: Promise<void>) => void (gate = p) };
}

test('a retriable error twice is retried in place; write resolves only after the insert succeeded', async () => {
  const w = wrap(() => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 2);
  let release!: () => void;
  w.hold(new Promise<void>((r) => (release = r)));
  const sink = new ClickHouseSink(w.client, opts, silentLogger);
  let resolved = false;
  const p = sink.write(events('s1', 5)).then(() => (resolved = true));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(w.calls.failed, 2);
  assert.equal(resolved, false, 'not acknowledged while the insert is still pending');
  assert.equal(await count('SELECT count() AS n FROM events'), 0);
  release();
  await p;
  assert.equal(w.calls.ok, 1);
  assert.equal(sink.stats.store_retries, 2);
  assert.equal(await count('SELECT count() AS n FROM events FINAL'), 5);
});

test('a schema error from ClickHouse is not retried', async () => {
  let first = true;
  const client = new Proxy(store, {
    get(target, prop, recv) {
      if (prop !== 'insert') return Reflect.get(target, prop, recv) as unknown;
      return (args: Parameters<ClickHouseClient['insert']>[0]) => {
        const table = first ? 'no_such_table' : args.table;
        first = false;
        return target.insert({ ...args, table });
      };
    },
  });
  const lines: string[] = [];
  const logger = { ...silentLogger, error: (o: object, msg: string) => void lines.push(msg + JSON.stringify(o)) };
  const sink = new ClickHouseSink(client, opts, logger);
  await assert.rejects(sink.write(events('s2', 3)), (e: IngestError) => e.code === 'ING_ERR_STORE_SCHEMA' && !e.retriable && /ClickHouse 60/.test(e.message));
  assert.equal(sink.stats.store_retries, 0);
  assert.equal(sink.stats.store_errors, 1);
  assert.ok(lines.some((l) => l.startsWith('ING_ERR_STORE_SCHEMA')));
});

test('an unreachable ClickHouse server: retried until retry_max_ms, then ING_ERR_RETRY_EXHAUSTED', async () => {
  const down = await openStore({ kind: 'server', url: 'http://127.0.0.1:1' });
  const sink = new ClickHouseSink(down, { ...opts, retry_max_ms: 200, retry_backoff_ms: 20 }, silentLogger);
  const t0 = Date.now();
  await assert.rejects(sink.write(events('s3', 1)), (e: IngestError) => {
    assert.equal(e.code, 'ING_ERR_RETRY_EXHAUSTED');
    assert.equal(e.retriable, true);
    assert.equal((e.cause as IngestError).code, 'ING_ERR_STORE_UNAVAILABLE');
    return true;
  });
  assert.ok(sink.stats.store_retries >= 1);
  assert.ok(Date.now() - t0 < 2_000);
  await releaseStore(down);
});

test('writes within flush_interval_ms share one flush; inserts are cut at max_batch_rows', async () => {
  const sink = new ClickHouseSink(store, { ...opts, flush_interval_ms: 50, max_batch_rows: 4 }, silentLogger);
  await Promise.all([sink.write(events('a', 3)), sink.write(events('b', 3))]);
  assert.equal(sink.stats.flushes, 1);
  assert.equal(sink.stats.inserts, 2, '6 rows in chunks of 4');
  assert.equal(await count('SELECT count() AS n FROM events FINAL'), 6);
  await sink.close();
});

test('the same rows written twice collapse to one row per (session_id, seq)', async () => {
  const sink = new ClickHouseSink(store, opts, silentLogger);
  await sink.write(events('dup', 4));
  await sink.write(events('dup', 4));
  assert.equal(sink.stats.rows_written, 8);
  assert.equal(await count('SELECT count() AS n FROM events FINAL'), 4);
});

test('classification reads only the error shape', () => {
  assert.equal(classifyStoreError(new TypeError('x is undefined'), 'w').code, 'ING_ERR_INTERNAL');
  assert.equal(classifyStoreError(Object.assign(new Error('boom'), { code: 'ETIMEDOUT' }), 'w').code, 'ING_ERR_STORE_UNAVAILABLE');
  assert.equal(classifyStoreError(Object.assign(new Error('Too many parts'), { code: '252', type: 'TOO_MANY_PARTS' }), 'w').code, 'ING_ERR_STORE_TRANSIENT');
  const schema = classifyStoreError(Object.assign(new Error("Cannot parse input: 'secret-row'"), { code: '27' }), 'w');
  assert.equal(schema.code, 'ING_ERR_STORE_SCHEMA');
  assert.ok(!schema.message.includes('secret-row'), 'ClickHouse messages that quote rows are not repeated');
  assert.equal(classifyStoreError(Object.assign(new Error('nope'), { retriable: false }), 'w').retriable, false);
});

test('chTime writes exact microseconds, UTC', () => {
  assert.equal(chTime(1_763_700_000_123_456), '2025-11-21 04:40:00.123456');
  assert.equal(parseChTime(chTime(1_763_700_000_000_007)), 1_763_700_000_000_007);
});
