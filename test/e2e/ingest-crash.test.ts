/**
 * Crash consistency of ingest: killed (SIGKILL) after ClickHouse acknowledged a batch and before
 * the log offset was committed, then restarted — every row lands exactly once.
 *
 *   1. `vigil gateway` (embedded log, no ingest) records sessions; stopped cleanly.
 *   2. `vigil ingest` with VIGIL_FAULT=ingest.crash_after_insert: inserts its first batch, dies.
 *   3. `vigil start` on the same data dir: ingest resumes from the committed offset (redelivery).
 *   4. chDB, read directly: after OPTIMIZE … FINAL every table has exactly one row per key, and the
 *      number of events equals the number of records in the log (nothing lost).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalEventLog } from '@vigil/eventlog/local/index';
import { openStore, releaseStore } from '@vigil/ingest/store/client';
import { startVigil, removedAtExit } from '../support/vigil-process.ts';
import { collectSessions, ended, startedOf } from '../support/session-log.ts';

const SESSIONS = 6;

test('ingest killed between insert and offset commit neither loses nor duplicates rows', async () => {
  const gw = await startVigil({ command: 'gateway' });
  const dataDir = gw.dataDir;
  const token = await gw.token('dave');
  for (let i = 0; i < SESSIONS; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port: gw.gatewayPort, user: 'dave', database: 'local-pg', password: token });
    await c.connect();
    for (let k = 0; k < 10; k++) await c.query('select $1::int as k, repeat($2, 100)', [k, 'z']);
    await c.end();
  }
  assert.equal(await gw.stop(), 0, gw.output());

  // How many chained events the log holds: the ground truth for the store.
  const log = await LocalEventLog.open({ dir: `${dataDir}/log`, read_only: true });
  // The log also holds the readiness probe's refused connection: a session too, without a login.
  const isDave = (s: Parameters<typeof ended>[0]) => startedOf(s)?.sub === 'dave';
  const recorded = await collectSessions(log, (m) => [...m.values()].filter((s) => ended(s) && isDave(s)).length >= SESSIONS);
  await log.close();
  assert.equal([...recorded.values()].filter(isDave).length, SESSIONS);

  const crashing = await startVigil({
    command: 'ingest',
    dataDir,
    ready: 'none',
    config: { ingest: { max_batch_rows: 50 } },
    env: { VIGIL_FAULT: 'ingest.crash_after_insert' },
  });
  assert.equal(await crashing.exitedWithin(120_000), 'SIGKILL', `ingest should have crashed at the fault point:\n${crashing.output()}`);

  const recovered = await startVigil({ command: 'start', dataDir, config: { ingest: { max_batch_rows: 50 } } });
  const analyst = await recovered.token('erin', { roles: ['analyst'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${recovered.apiPort}/api/sessions?sub=dave&limit=100`, { headers: { authorization: `Bearer ${analyst}` } });
    const body = (await res.json()) as { items: { end_reason: string }[] };
    if (body.items.filter((s) => s.end_reason).length >= SESSIONS) break;
    assert.ok(Date.now() < deadline, 'sessions did not land after the restart');
    await new Promise((r) => setTimeout(r, 250));
  }
  // Let ingest finish the tail of the log, then stop it so this process can open the chDB path.
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await recovered.stop(), 0, recovered.output());

  // Ground truth after the restart (its own readiness probe added a refused session to the log).
  const after = await LocalEventLog.open({ dir: `${dataDir}/log`, read_only: true });
  const final = await collectSessions(after, (m) => [...m.values()].filter(ended).length >= recorded.size + 1, 10_000);
  await after.close();
  const totalEvents = [...final.values()].reduce((n, s) => n + s.events.length, 0);

  const store = await openStore({ kind: 'chdb', path: `${dataDir}/clickhouse` });
  try {
    const one = async (sql: string) => ((await (await store.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, string>[])[0]!;
    for (const table of ['events', 'queries', 'sessions']) await store.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
    const events = await one('SELECT count() AS n, uniqExact(session_id, seq) AS u FROM events');
    assert.equal(Number(events.n), totalEvents, 'every logged event is in the store once');
    assert.equal(Number(events.u), totalEvents);
    const queries = await one("SELECT count() AS n, uniqExact(session_id, seq) AS u FROM queries");
    assert.equal(Number(queries.n), Number(queries.u), 'no duplicate query rows');
    assert.equal(Number(queries.n), SESSIONS * 10, 'every statement is a query row');
    const sessions = await one("SELECT count() AS n, countIf(sub = 'dave') AS dave FROM sessions");
    assert.equal(Number(sessions.n), final.size, 'one row per recorded session, refused ones included');
    assert.equal(Number(sessions.dave), SESSIONS);
  } finally {
    await releaseStore(store);
  }
});

test('vigil start: if the ingest thread dies, the process drains and exits 70; after a restart every row lands once', async () => {
  const onceFile = removedAtExit(join(tmpdir(), `vigil-fault-${process.pid}-${Date.now()}`));
  const first = await startVigil({
    config: { ingest: { max_batch_rows: 50 } },
    env: { VIGIL_FAULT: 'ingest.exit_after_insert', VIGIL_FAULT_ONCE_FILE: onceFile },
  });
  const token = await first.token('hank');
  const run = async (port: number) => {
    // Bounded: a session caught by the shutdown must end with an error, not wait forever.
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'hank', database: 'local-pg', password: token, connectionTimeoutMillis: 20_000, query_timeout: 20_000 });
    await c.connect();
    for (let k = 0; k < 10; k++) await c.query('select $1::int as k', [k]);
    await c.end();
  };
  await run(first.gatewayPort).catch(() => {}); // the shutdown may end this session (57P01)
  assert.equal(await first.exitedWithin(120_000), 70, `exit code after the ingest thread died:\n${first.output()}`);
  assert.ok(existsSync(onceFile), 'the fault fired');
  assert.match(first.output(), /ingest worker exited: shutting down cleanly/);
  // Exit 70 is also what a shutdown with a step passed after its limit gives: that must not be how it got there.
  assert.doesNotMatch(first.output(), /shutdown step did not finish|shutdown step failed/, first.output().slice(-6000));

  const second = await startVigil({ dataDir: first.dataDir, config: { ingest: { max_batch_rows: 50 } } });
  const token2 = await second.token('hank');
  for (let i = 0; i < 3; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port: second.gatewayPort, user: 'hank', database: 'local-pg', password: token2 });
    await c.connect();
    for (let k = 0; k < 10; k++) await c.query('select $1::int as k', [k]);
    await c.end();
  }
  const analyst = await second.token('ivy', { roles: ['analyst'] });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${second.apiPort}/api/sessions?sub=hank&limit=100`, { headers: { authorization: `Bearer ${analyst}` } });
    const body = (await res.json()) as { items: { end_reason: string }[] };
    // The three sessions of this run (the first run may have died before its session began).
    if (body.items.filter((s) => s.end_reason).length >= 3) break;
    assert.ok(Date.now() < deadline, `sessions did not land after the restart:\n${second.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await second.stop(), 0, second.output());

  const log = await LocalEventLog.open({ dir: `${first.dataDir}/log`, read_only: true });
  const recorded = await collectSessions(log, (m) => [...m.values()].filter((s) => ended(s) && startedOf(s)?.sub === 'hank').length >= 3, 10_000);
  await log.close();
  const totalEvents = [...recorded.values()].reduce((n, s) => n + s.events.length, 0);
  const store = await openStore({ kind: 'chdb', path: `${first.dataDir}/clickhouse` });
  try {
    await store.command({ query: 'OPTIMIZE TABLE events FINAL' });
    const one = async (sql: string) => ((await (await store.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, string>[])[0]!;
    const events = await one('SELECT count() AS n, uniqExact(session_id, seq) AS u FROM events');
    assert.equal(Number(events.n), totalEvents, 'every logged event is in the store once');
    assert.equal(Number(events.u), totalEvents);
  } finally {
    await releaseStore(store);
  }
});
