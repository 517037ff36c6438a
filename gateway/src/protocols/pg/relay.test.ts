/**
 * Integration: the real PostgreSQL at 127.0.0.1:5432 (trust) through the gateway, a real
 * EventSink over an in-memory Producer. Relay of every query shape, recording, frame exactness.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import pg from 'pg';
import type { ChainedEvent, FrameEvent } from '@vigil/schemas';
import { startHarness, startTee, connect, RawPg, wire, until, errorFields, rawExchange, type Harness } from './testkit.ts';

let h: Harness;

before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

const frames = (events: ChainedEvent[], dir: 'c2s' | 's2c'): FrameEvent[] =>
  events.filter((e): e is FrameEvent => e.type === 'frame' && e.direction === dir);

async function ended(sessionId: string): Promise<ChainedEvent[]> {
  await until(() => h.session(sessionId).events.some((e) => e.type === 'session.ended'), 5000, 'session.ended');
  await h.sink.drain();
  return h.session(sessionId).events;
}

test('simple and extended queries, an error, LISTEN/NOTIFY; session.started carries identity and target', async () => {
  const c = await connect(h, 'alice');
  assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  const r = await c.query('select $1::int + $2::int as sum, $3::text as t', [40, 2, 'hi']);
  assert.deepEqual(r.rows[0], { sum: 42, t: 'hi' });
  await assert.rejects(c.query('select * from no_such_table_xyz'), (e: { code?: string }) => e.code === '42P01');
  assert.equal((await c.query('select 2 as two')).rows[0].two, 2, 'session usable after an error');

  const listener = await connect(h, 'bob');
  await listener.query('listen vigil_chan');
  const got = new Promise<pg.Notification>((r) => listener.once('notification', r));
  await c.query(`notify vigil_chan, 'payload-1'`);
  assert.equal((await got).payload, 'payload-1');
  await listener.end();
  await c.end();

  const [sid] = h.sessionsOf('alice');
  const events = await ended(sid!);
  const started = events[0]!;
  assert.equal(started.type, 'session.started');
  if (started.type === 'session.started') {
    assert.equal(started.sub, 'alice');
    assert.deepEqual(started.groups, ['dba']);
    assert.equal(started.issuer, 'https://issuer.test.vigil');
    assert.equal(started.actor_kind, 'agent');
    assert.equal(started.target_id, 'main');
    assert.equal(started.db_name, 'postgres');
    assert.equal(started.client_app, 'vigil-test');
    assert.equal(started.tls, false);
    assert.equal(started.upstream_tls, false);
    assert.match(started.client_addr ?? '', /^127\.0\.0\.1:\d+$/);
  }
  const s2c = frames(events, 's2c');
  assert.equal(s2c[0]!.msg_type, 'R', 's2c stream starts with AuthenticationOk');
  const bobEvents = await ended(h.sessionsOf('bob')[0]!);
  assert.ok(frames(bobEvents, 's2c').some((f) => f.msg_type === 'A'), "NotificationResponse recorded in the listener's session");
  assert.ok(frames(events, 'c2s').some((f) => f.msg_type === 'P'));
  const last = events.at(-1)!;
  assert.equal(last.type, 'session.ended');
  if (last.type === 'session.ended') {
    assert.equal(last.reason, 'client_closed');
    assert.ok(last.messages_c2s > 0 && last.bytes_s2c > 0);
  }
  assert.ok(h.session(sid!).chainOk);
});

test('frame exactness: recorded frames equal, byte for byte, what the client sent and received after authentication', async () => {
  const tee = await startTee(h.port);
  try {
    const c = await connect(h, 'exact', { port: tee.port });
    await c.query('select 1');
    await c.query('select $1::text as a, $2::bytea as b', ['x'.repeat(100), Buffer.from([0, 1, 2, 255])]);
    await c.query('select generate_series(1, 5000) as n, repeat($1, 50) as pad', ['y']);
    await c.query('bogus sql').catch(() => {});
    await c.query('begin; create temp table t(a int); insert into t select generate_series(1,100); commit');
    await c.end();
    await tee.conns[0]!.closed;
    const [sid] = h.sessionsOf('exact');
    const events = await ended(sid!);
    const sent = Buffer.concat(tee.conns[0]!.c2s);
    const received = Buffer.concat(tee.conns[0]!.s2c);
    // Client's bytes after StartupMessage and PasswordMessage; server's after AuthenticationCleartextPassword.
    const startupLen = sent.readUInt32BE(0);
    const afterPassword = startupLen + 1 + sent.readUInt32BE(startupLen + 1);
    assert.equal(sent[startupLen], 0x70, 'PasswordMessage follows the StartupMessage');
    assert.deepEqual([...received.subarray(0, 9)], [0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
    const recC2S = Buffer.concat(frames(events, 'c2s').map((f) => f.data));
    const recS2C = Buffer.concat(frames(events, 's2c').map((f) => f.data));
    assert.equal(recC2S.length, sent.length - afterPassword);
    assert.ok(recC2S.equals(sent.subarray(afterPassword)), 'c2s frames == bytes the client sent after its PasswordMessage');
    assert.equal(recS2C.length, received.length - 9);
    assert.ok(recS2C.equals(received.subarray(9)), 's2c frames == bytes the client received after the password request');
    // Each frame is one whole message whose msg_type is its type letter.
    for (const f of [...frames(events, 'c2s'), ...frames(events, 's2c')]) {
      assert.equal(f.msg_type, String.fromCharCode(f.data[0]!));
      assert.equal(f.data.length, 1 + Buffer.from(f.data).readUInt32BE(1));
    }
    const report = h.session(sid!);
    assert.ok(report.chainOk, report.problem);
    report.events.forEach((e, i) => assert.equal(e.seq, i));
  } finally {
    tee.close();
  }
});

test('pipelined extended queries in one write are relayed and answered in order', async () => {
  const c = await RawPg.login(h.port, 'piper', await h.issuer.mint('piper'));
  const batch: Buffer[] = [];
  for (let i = 0; i < 50; i++) batch.push(wire.parse('', 'select $1::int * 2 as v'), wire.bind('', [String(i)]), wire.execute());
  batch.push(wire.sync());
  c.send(Buffer.concat(batch));
  const msgs = await c.until('Z');
  const rows = msgs.filter((m) => m[0] === 0x44).map((m) => Number(m.toString('utf8', 11)));
  assert.deepEqual(rows, Array.from({ length: 50 }, (_, i) => i * 2));
  c.send(wire.terminate());
  await c.closedWith();
  const [sid] = h.sessionsOf('piper');
  const events = await ended(sid!);
  assert.equal(frames(events, 'c2s').filter((f) => f.msg_type === 'E').length, 50);
});

test('COPY FROM STDIN and COPY TO STDOUT with psql', async () => {
  const env = { ...process.env, PGPASSWORD: await h.issuer.mint('copier'), PGSSLMODE: 'disable', PGGSSENCMODE: 'disable' };
  const args = ['-h', '127.0.0.1', '-p', String(h.port), '-U', 'copier', '-d', 'main', '-v', 'ON_ERROR_STOP=1', '-At'];
  const script = [
    'create temp table c(a int, b text);',
    '\\copy c from stdin',
    ...Array.from({ length: 1000 }, (_, i) => `${i}\trow-${i}`),
    '\\.',
    'select count(*), sum(a) from c;',
    "copy (select a, b from c order by a limit 3) to stdout with (format csv);",
  ].join('\n');
  const child = execFile('psql', [...args, '-f', '-'], { env });
  child.stdin!.end(script);
  const out = await new Promise<string>((resolve, reject) => {
    let s = '';
    child.stdout!.on('data', (d) => (s += d));
    child.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`psql exited ${code}`))));
  });
  assert.match(out, /^1000\|499500$/m);
  assert.match(out, /^0,row-0\n1,row-1\n2,row-2$/m);
  const [sid] = h.sessionsOf('copier');
  const events = await ended(sid!);
  assert.ok(frames(events, 's2c').some((f) => f.msg_type === 'G'), 'CopyInResponse');
  assert.ok(frames(events, 's2c').some((f) => f.msg_type === 'H'), 'CopyOutResponse');
  assert.ok(frames(events, 'c2s').filter((f) => f.msg_type === 'd').length >= 1, 'CopyData from the client');
  assert.ok(frames(events, 'c2s').some((f) => f.msg_type === 'c'), 'CopyDone');
});

test('a large result (≥ 50 MB) is relayed completely and recorded message by message', async () => {
  const c = await connect(h, 'bulk');
  const r = await c.query(`select repeat('x', 1000) as v from generate_series(1, 60000)`);
  assert.equal(r.rows.length, 60000);
  assert.equal(r.rows[59999].v.length, 1000);
  await c.end();
  const [sid] = h.sessionsOf('bulk');
  const events = await ended(sid!);
  const dataRows = frames(events, 's2c').filter((f) => f.msg_type === 'D');
  assert.equal(dataRows.length, 60000);
  const bytes = dataRows.reduce((n, f) => n + f.data.length, 0);
  assert.ok(bytes >= 60_000_000, `recorded ${bytes} bytes of DataRow`);
  assert.ok(h.session(sid!).chainOk);
});

test('a client that stops and reads in fits gets exactly what the target sent: a reused read buffer is never overwritten while a write holds it', async () => {
  // The gateway reads the target into a buffer it reuses as long as each chunk is written on at
  // once. Against a stalled client the socket buffers fill and writes queue, holding the buffer;
  // rows that trickle in (PostgreSQL sends 8 KiB at a time, below the write high-water mark) then
  // land in new buffers, or they would overwrite what is queued. Rows that differ one from the
  // next make an overwrite visible, in what the client gets and in what is recorded.
  const c = await RawPg.login(h.port, 'fitful', await h.issuer.mint('fitful'));
  const sid = h.sessionsOf('fitful')[0]!;
  const rows = 8000;
  c.socket.pause();
  c.send(wire.query(`select i, md5(i::text) || repeat(chr(65 + i % 26), 4000 + i % 97) from generate_series(1, ${rows}) i, lateral (select pg_sleep(0.0001)) s`));
  await new Promise((r) => setTimeout(r, 2500));
  c.socket.resume();
  const fits = setInterval(() => {
    c.socket.pause();
    setTimeout(() => c.socket.resume(), 20);
  }, 40);
  let msgs: Buffer[];
  try {
    msgs = await c.until('Z', 60_000);
  } finally {
    clearInterval(fits);
    c.socket.resume();
  }
  const dataRows = msgs.filter((m) => m[0] === 0x44);
  assert.equal(dataRows.length, rows);
  const { createHash } = await import('node:crypto');
  dataRows.forEach((m, k) => {
    const i = k + 1;
    const a = m.readInt32BE(7);
    const first = m.toString('utf8', 11, 11 + a);
    const b = m.readInt32BE(11 + a);
    const second = m.toString('utf8', 15 + a, 15 + a + b);
    assert.equal(first, String(i), `row ${i}: first column`);
    assert.equal(second, createHash('md5').update(String(i)).digest('hex') + String.fromCharCode(65 + (i % 26)).repeat(4000 + (i % 97)), `row ${i}: second column`);
  });
  c.send(wire.terminate());
  await c.closedWith();
  const events = await ended(sid);
  const recorded = frames(events, 's2c').filter((f) => f.data[0] === 0x44);
  assert.equal(recorded.length, rows);
  recorded.forEach((f, k) => assert.ok(Buffer.from(f.data).equals(dataRows[k]!), `recorded row ${k + 1} differs from what the client got`));
});

test('cancel: the client\'s CancelRequest (gateway-issued key) cancels the query upstream (57014)', async () => {
  const c = await connect(h, 'canceller');
  const key = c as unknown as { processID: number; secretKey: number };
  const sleeping = c.query('select pg_sleep(30)');
  await new Promise((r) => setTimeout(r, 300));
  const helper = new pg.Client({ host: '127.0.0.1', port: h.port, user: 'canceller' }) as unknown as {
    cancel(client: pg.Client, query: unknown): void;
  };
  helper.cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
  const t0 = Date.now();
  await assert.rejects(sleeping, (e: { code?: string }) => e.code === '57014');
  assert.ok(Date.now() - t0 < 10_000);
  // The key the client holds is the gateway's, not the target's.
  const real = await c.query('select pg_backend_pid() as pid');
  assert.notEqual(real.rows[0].pid, key.processID);
  await c.end();
  assert.equal(h.gw.metrics.postgres.cancels_forwarded_total, 1);
});

test('cancel with an unknown key is dropped silently but recorded; the session is unaffected', async () => {
  const c = await RawPg.login(h.port, 'victim', await h.issuer.mint('victim'));
  assert.ok(c.key);
  const forged = Buffer.alloc(16);
  forged.writeUInt32BE(16, 0);
  forged.writeUInt32BE(80877102, 4);
  forged.writeUInt32BE(c.key.pid, 8);
  forged.writeUInt32BE((c.key.secret.readUInt32BE(0) ^ 1) >>> 0, 12);
  const before = h.gw.metrics.postgres.cancels_dropped_total;
  c.send(wire.query('select pg_sleep(0.5) as s'));
  const answer = await rawExchange(h.port, [forged]);
  assert.equal(answer.length, 0, 'no response to a CancelRequest');
  const msgs = await c.until('Z');
  assert.ok(!msgs.some((m) => m[0] === 0x45), `query not cancelled: ${msgs.filter((m) => m[0] === 0x45).map((m) => errorFields(m).M)}`);
  assert.equal(h.gw.metrics.postgres.cancels_dropped_total, before + 1);
  await until(() => h.events().some((e) => e.type === 'protocol.refused' && e.code === 'GW_ERR_CANCEL_UNKNOWN_KEY'), 3000, 'refusal event');
  c.close();
});
