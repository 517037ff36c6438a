/**
 * Pipeline end to end against REAL chDB (one data path per test file: chDB binds one per process)
 * with the in-memory EventLog of ingest/src/testing (the local log was not yet committed).
 */
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
import { Topics } from '@vigil/eventlog/types';
import { useChdbStore } from './testing/store.ts';
import { startIngest, type IngestHandle } from './index.ts';
import { MemoryEventLog } from './testing/memory-log.ts';
import { recordSession } from './testing/sessions.ts';
import * as m from './transforms/decode/pg/fixtures/builders.ts';
import type { Logger } from './errors.ts';

let store: ClickHouseClient;

useChdbStore('vigil-ingest-pipeline-', (s) => (store = s));
beforeEach(async () => {
  for (const t of ['sessions', 'events', 'queries']) await store.command({ query: `TRUNCATE TABLE ${t}` });
});

const SECRET = 'sekrit-param-4242';

/** Session A: simple query, extended query with a secret parameter, COPY out. */
function sessionA(id = 'sess-a') {
  return recordSession(id, [
    m.Startup('app_rw', 'app'), m.AuthenticationOk(), m.ReadyForQuery(),
    m.Query('select 1'), m.RowDescription(['?column?']), m.DataRow(['1']), m.CommandComplete('SELECT 1'), m.ReadyForQuery(),
    m.Parse('q1', 'update users set token = $1 where id = $2'), m.Bind('', 'q1', [SECRET, '7']), m.Execute(), m.Sync(),
    m.after(700, m.ParseComplete()), m.BindComplete(), m.CommandComplete('UPDATE 1'), m.ReadyForQuery(),
    m.Query('copy t to stdout'), m.CopyOutResponse(1), m.CopyDataOut('a\n'), m.CopyDataOut('b\n'), m.CopyDoneOut(), m.CommandComplete('COPY 2'), m.ReadyForQuery(),
    m.Terminate(),
  ], { sub: 'agent-7', target_id: 'prod-pg' });
}

/** Session B: an error, then a pipeline of three executes with the second failing. */
function sessionB(id = 'sess-b') {
  return recordSession(id, [
    m.Query('select * from missing'), m.ErrorResponse('42P01', 'relation "missing" does not exist'), m.ReadyForQuery(),
    m.Parse('', 'insert into t values ($1)'), m.Bind('', '', ['1']), m.Execute(),
    m.Parse('', 'insert into t values ($1::int/0)'), m.Bind('', '', ['2']), m.Execute(),
    m.Parse('', 'insert into t values ($1)'), m.Bind('', '', ['3']), m.Execute(), m.Sync(),
    m.ParseComplete(), m.BindComplete(), m.CommandComplete('INSERT 0 1'),
    m.ParseComplete(), m.BindComplete(), m.ErrorResponse('22012', 'division by zero'), m.ReadyForQuery('I'),
  ], { sub: 'bob', target_id: 'prod-pg' });
}

/** Interleave sessions record by record (as the gateway's shared sink would). */
function interleave(...lists: { records: unknown[] }[]) {
  const out = [];
  for (let i = 0; lists.some((l) => i < l.records.length); i++) for (const l of lists) if (i < l.records.length) out.push(l.records[i]);
  return out as ReturnType<typeof sessionA>['records'];
}

async function rows<T = Record<string, unknown>>(query: string): Promise<T[]> {
  return (await store.query({ query, format: 'JSONEachRow' })).json<T>();
}
async function count(query: string): Promise<number> {
  return Number((await rows<{ n: string }>(query))[0]!.n);
}

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const put = (obj: object, msg: string): void => void lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, debug: put, info: put, warn: put, error: put };
}

async function ingestAll(log: MemoryEventLog, total: number, config: Record<string, unknown> = {}, storeClient = store, logger?: Logger): Promise<IngestHandle> {
  const handle = await startIngest({ config: { ingest: { retry_backoff_ms: 5, ...config } }, log, store: storeClient, logger });
  await until(() => log.committedOffset('vigil-ingest', Topics.frames) >= total);
  return handle;
}

test('sessions, events and queries rows for two interleaved sessions', async () => {
  const a = sessionA();
  const b = sessionB();
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  const records = interleave(a, b);
  log.append(Topics.frames, records);
  const logger = capture();
  const h = await ingestAll(log, records.length, { max_batch_rows: 7 }, store, logger);
  await h.stop();

  const sessions = await rows('SELECT session_id, sub, target_id, client_app, groups, end_reason, ended_at, version, started_at FROM sessions FINAL ORDER BY session_id');
  assert.equal(sessions.length, 2);
  assert.deepEqual(sessions.map((s) => [s.session_id, s.sub, s.target_id, s.end_reason]), [['sess-a', 'agent-7', 'prod-pg', 'client_closed'], ['sess-b', 'bob', 'prod-pg', 'client_closed']]);
  assert.equal(sessions[0]!.client_app, 'psql', 'the end row carries the start row fields');
  assert.deepEqual(sessions[0]!.groups, ['dba']);
  assert.notEqual(sessions[0]!.ended_at, null);
  assert.equal(Number(sessions[0]!.version), a.records.length - 1);

  assert.equal(await count('SELECT count() AS n FROM events FINAL'), records.length);
  const frameRows = await rows<{ sub: string; size: number; msg_type: string; detail: string }>("SELECT sub, size, msg_type, detail FROM events FINAL WHERE session_id = 'sess-a' AND type = 'frame' ORDER BY seq");
  assert.equal(frameRows.length, a.frames);
  assert.ok(frameRows.every((r) => r.sub === 'agent-7' && r.detail === ''), 'frames inherit identity, carry no detail');
  assert.equal(frameRows[3]!.msg_type, 'Q');
  assert.equal(Number(frameRows[3]!.size), m.Query('select 1').data.length);
  const started = await rows<{ detail: string }>("SELECT detail FROM events FINAL WHERE session_id = 'sess-a' AND type = 'session.started'");
  assert.deepEqual(JSON.parse(started[0]!.detail), { tls: false, upstream_tls: false, client_app: 'psql' });

  const qa = await rows<Record<string, unknown>>("SELECT * FROM queries FINAL WHERE session_id = 'sess-a' ORDER BY seq");
  assert.deepEqual(qa.map((q) => [q.statement, q.command_tag, Number(q.rows), q.sub, q.target_id]), [
    ['select 1', 'SELECT 1', 1, 'agent-7', 'prod-pg'],
    ['update users set token = $1 where id = $2', 'UPDATE 1', 1, 'agent-7', 'prod-pg'],
    ['copy t to stdout', 'COPY 2', 2, 'agent-7', 'prod-pg'],
  ]);
  assert.deepEqual(qa[1]!.params, [SECRET, '7']);
  assert.equal(qa[1]!.statement_name, 'q1');
  assert.ok(Number(qa[1]!.duration_us) >= 700);
  assert.equal(Number(qa[2]!.bytes), 4);

  const qb = await rows<Record<string, unknown>>("SELECT statement, sqlstate, error, command_tag, protocol_kind FROM queries FINAL WHERE session_id = 'sess-b' ORDER BY seq");
  assert.deepEqual(qb.map((q) => [q.sqlstate, q.command_tag, q.protocol_kind]), [['42P01', '', 'simple'], ['', 'INSERT 0 1', 'extended'], ['22012', '', 'extended']]);

  // Payloads only land decoded in `queries`; never in events, and never in logs.
  assert.equal(await count(`SELECT count() AS n FROM events WHERE positionCaseInsensitive(detail, '${SECRET}') > 0 OR positionCaseInsensitive(toString(tuple(*)), '${SECRET}') > 0`), 0);
  assert.ok(!logger.lines.join('\n').includes(SECRET));
  assert.ok(!logger.lines.join('\n').includes('update users'));
  assert.equal(h.stats.pipeline.decode_errors, 0);
  assert.equal(h.stats.pipeline.live_sessions, 0, 'ended sessions are evicted');
});

test('a statement straddling batches decodes the same as in one batch', async () => {
  const a = sessionA('sess-straddle');
  for (const size of [1, 2, 1000]) {
    await store.command({ query: 'TRUNCATE TABLE queries' });
    const log = new MemoryEventLog();
    await log.ensureTopics([Topics.frames]);
    log.append(Topics.frames, a.records);
    const h = await ingestAll(log, a.records.length, { max_batch_rows: size });
    await h.stop();
    const q = await rows<{ statement: string; command_tag: string; rows: string }>("SELECT statement, command_tag, rows FROM queries FINAL ORDER BY seq");
    assert.deepEqual(q.map((r) => r.command_tag), ['SELECT 1', 'UPDATE 1', 'COPY 2'], `batch size ${size}`);
  }
});

test('redelivered batches (commit lost after success) leave exactly one row per (session_id, seq)', async () => {
  const a = sessionA('sess-redeliver');
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  log.append(Topics.frames, a.records);
  log.failNextCommits(3);
  const h = await ingestAll(log, a.records.length, { max_batch_rows: 10 });
  await h.stop();
  const okDeliveries = log.deliveries.filter((d) => d.ok);
  assert.ok(okDeliveries.length > Math.ceil(a.records.length / 10), 'some batches were handled twice');
  assert.ok(h.stats.pipeline.refolded_events > 0);
  for (const t of ['events', 'queries']) {
    const final = await count(`SELECT count() AS n FROM ${t} FINAL`);
    const distinct = await count(`SELECT uniqExact(session_id, seq) AS n FROM ${t}`);
    assert.equal(final, distinct, `${t}: one row per key under FINAL`);
  }
  // The redelivered rows really were sent again (the engine may merge or dedup identical blocks).
  assert.ok(h.stats.sink.rows_written > a.records.length + 3 + 2, `rows written twice: ${h.stats.sink.rows_written}`);
  assert.equal(await count('SELECT count() AS n FROM events FINAL'), a.records.length);
  assert.equal(await count('SELECT count() AS n FROM queries FINAL'), 3);
  assert.equal(await count('SELECT count() AS n FROM sessions FINAL'), 1);
  await store.command({ query: 'OPTIMIZE TABLE events FINAL' });
  assert.equal(await count('SELECT count() AS n FROM events'), a.records.length, 'merged: exactly one row per (session_id, seq)');
});

test('store failing past retry_max_ms: handler rejects, state rolls back, redelivery stores identical rows', async () => {
  const a = sessionA('sess-flaky');
  const log = new MemoryEventLog({ retry_delay_ms: 5 });
  await log.ensureTopics([Topics.frames]);
  log.append(Topics.frames, a.records);
  let failures = 0;
  const flaky = new Proxy(store, {
    get(target, prop, recv) {
      if (prop === 'insert') {
        return async (args: Parameters<ClickHouseClient['insert']>[0]) => {
          if (args.table === 'queries' && failures < 4) {
            failures++;
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
          }
          return target.insert(args);
        };
      }
      return Reflect.get(target, prop, recv) as unknown;
    },
  });
  const h = await ingestAll(log, a.records.length, { max_batch_rows: 1000, retry_max_ms: 20, retry_backoff_ms: 5 }, flaky);
  await h.stop();
  assert.equal(failures, 4);
  assert.ok(log.deliveries.some((d) => d.ok === false), 'the batch was rejected and redelivered');
  assert.ok(h.stats.pipeline.rollbacks >= 1);
  const q = await rows<{ statement: string; statement_known: number }>('SELECT statement, statement_known FROM queries FINAL ORDER BY seq');
  assert.deepEqual(q.map((r) => r.statement), ['select 1', 'update users set token = $1 where id = $2', 'copy t to stdout']);
  assert.ok(q.every((r) => Number(r.statement_known) === 1));
});

test('restart mid-session: identity read back from sessions, mid-query start handled', async () => {
  const a = sessionA('sess-restart');
  // Cut after Parse+Bind (index: started + 3 handshake + 5 simple + Parse, Bind = 11 records).
  const cut = 11;
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  log.append(Topics.frames, a.records.slice(0, cut));
  const first = await ingestAll(log, cut);
  await first.stop();
  // A new process: fresh pipeline state, same group, same store.
  log.append(Topics.frames, a.records.slice(cut));
  const second = await ingestAll(log, a.records.length);
  await second.stop();
  assert.equal(second.stats.pipeline.session_lookups, 1);
  const q = await rows<Record<string, unknown>>("SELECT statement, statement_name, params, command_tag, sub, statement_known FROM queries FINAL ORDER BY seq");
  assert.equal(q.length, 3);
  assert.deepEqual([q[1]!.statement, q[1]!.statement_name, q[1]!.command_tag, q[1]!.sub, Number(q[1]!.statement_known)], ['', '', 'UPDATE 1', 'agent-7', 0]);
  assert.equal(q[2]!.sub, 'agent-7', 'identity from the sessions table');
  assert.equal(second.stats.pipeline.orphans, 2, 'ParseComplete and BindComplete had no request');
  const s = await rows<{ client_app: string; end_reason: string }>('SELECT client_app, end_reason FROM sessions FINAL');
  assert.deepEqual(s, [{ client_app: 'psql', end_reason: 'client_closed' }]);
});

test('a malformed message or a corrupt record affects only itself', async () => {
  const bad = recordSession('sess-bad', [m.Query('select 1'), { direction: 'c2s', msg_type: 'Q', data: Buffer.from([0x51, 0, 0, 0, 99, 0x61]) }, m.Query('select 2'), m.CommandComplete('SELECT 1'), m.ReadyForQuery()]);
  const good = sessionB('sess-good');
  const log = new MemoryEventLog();
  await log.ensureTopics([Topics.frames]);
  const records = [...interleave(bad, good), { key: 'x', value: Buffer.from('not a chained event at all, long enough to pass the length check') }];
  log.append(Topics.frames, records);
  const logger = capture();
  const h = await ingestAll(log, records.length, {}, store, logger);
  await h.stop();
  assert.equal(h.stats.pipeline.decode_errors, 1);
  assert.equal(h.stats.source.invalid_records, 1);
  assert.ok(logger.lines.some((l) => l.startsWith('ING_ERR_DECODE')));
  assert.ok(logger.lines.some((l) => l.startsWith('ING_ERR_RECORD_INVALID')));
  assert.equal(await count("SELECT count() AS n FROM queries FINAL WHERE session_id = 'sess-good'"), 3);
  const q = await rows<{ statement: string }>("SELECT statement FROM queries FINAL WHERE session_id = 'sess-bad' ORDER BY seq");
  assert.deepEqual(q.map((r) => r.statement), ['select 2'], 'the session resynchronised after the reset');
  assert.equal(await count('SELECT count() AS n FROM events FINAL'), records.length - 1);
});
