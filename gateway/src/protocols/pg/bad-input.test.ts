/**
 * Integration: hostile and broken input. Every case runs while another session on the same gateway
 * runs a query loop, which must keep working; each refusal is protocol-correct (FATAL + SQLSTATE),
 * recorded as an event, and ends its session exactly once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type pg from 'pg';
import type { ChainedEvent, FrameEvent } from '@vigil/schemas';
import { LogError } from '@vigil/eventlog/types';
import { startHarness, connect, RawPg, wire, until, sleep, errorFields, rawExchange, type Harness } from './testkit.ts';

let h: Harness;
let loopClient: pg.Client;
let loopCount = 0;
let loopError: unknown;
let looping = true;
let loopDone: Promise<void>;

before(async () => {
  h = await startHarness({ postgres: { auth_timeout_ms: 1500, max_frame_bytes: 1024 * 1024, max_buffered_bytes_per_session: 8 * 1024 * 1024 } });
  loopClient = await connect(h, 'looper');
  loopDone = (async () => {
    while (looping) {
      try {
        const r = await loopClient.query('select $1::int as n', [loopCount]);
        assert.equal(r.rows[0].n, loopCount);
        loopCount++;
      } catch (err) {
        loopError = err;
        return;
      }
    }
  })();
});

after(async () => {
  looping = false;
  await loopDone;
  await loopClient.end();
  await h.close();
});

/** The concurrent session made progress during `fn` and never failed. */
async function whileLooping(fn: () => Promise<void>): Promise<void> {
  const start = loopCount;
  await fn();
  await until(() => loopCount > start + 3, 5000, 'query loop progress');
  assert.equal(loopError, undefined, 'the concurrent session kept working');
}

function fatal(bytes: Buffer): Record<string, string> {
  assert.ok(bytes.length > 5 && bytes[0] === 0x45, `expected an ErrorResponse, got ${bytes.subarray(0, 8).toString('hex')}`);
  const f = errorFields(bytes.subarray(0, 1 + bytes.readUInt32BE(1)));
  assert.equal(f.S, 'FATAL');
  return f;
}

async function refusedEvent(code: string, from: number): Promise<ChainedEvent> {
  await h.sink.drain();
  const e = await until(() => h.events().slice(from).find((x) => x.type === 'protocol.refused' && x.code === code), 3000, `protocol.refused ${code}`);
  const ends = h.session(e.session_id).events.filter((x) => x.type === 'session.ended');
  assert.equal(ends.length, 1, 'session.ended exactly once');
  return e;
}

const pkt = (len: number, code: number, body = Buffer.alloc(0)): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(len >>> 0, 0);
  b.writeUInt32BE(code >>> 0, 4);
  return Buffer.concat([b, body]);
};

test('malformed startup packets → FATAL 08P01 and a protocol.refused event', async () => {
  const cases: [string, Buffer, string, RegExp][] = [
    ['bad length', Buffer.from([0, 0, 0, 4, 0, 3, 0, 0]), 'GW_ERR_STARTUP_INVALID', /invalid startup packet length/],
    ['no protocol version', pkt(8, 0), 'GW_ERR_PROTOCOL_VERSION', /unsupported frontend protocol 0\.0/],
    ['unknown version 2.0', pkt(16, 2 << 16, Buffer.from('user\0u\0\0')) /* 16 = 8 + body */, 'GW_ERR_PROTOCOL_VERSION', /unsupported frontend protocol 2\.0/],
    ['missing user', pkt(23, 196608, Buffer.from('database\0main\0\0')), 'GW_ERR_STARTUP_INVALID', /no user name/],
    ['length 2^31-1', pkt(0x7fffffff, 196608), 'GW_ERR_FRAME_TOO_LARGE', /too large/],
    ['HTTP request instead of PostgreSQL', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'GW_ERR_FRAME_TOO_LARGE', /too large/],
  ];
  for (const [name, bytes, code, message] of cases) {
    await whileLooping(async () => {
      const from = h.events().length;
      const f = fatal(await rawExchange(h.port, [bytes]));
      assert.equal(f.C, '08P01', name);
      assert.match(f.M!, message, name);
      const e = await refusedEvent(code, from);
      assert.ok(e.type === 'protocol.refused' && e.sqlstate === '08P01');
    });
  }
});

test('unencrypted data after SSLRequest is refused (no buffer stuffing)', async () => {
  await whileLooping(async () => {
    const got = await rawExchange(h.port, [Buffer.concat([pkt(8, 80877103), wire.startup({ user: 'x', database: 'main' })])]);
    assert.match(fatal(got).M!, /unencrypted data after SSL request/);
  });
});

test('GSSENCRequest is answered N, then the client continues with its StartupMessage', async () => {
  await whileLooping(async () => {
    const sock = net.connect(h.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    sock.write(pkt(8, 80877104));
    await until(() => Buffer.concat(got).length >= 1, 2000, "the 'N'");
    assert.equal(Buffer.concat(got).toString('latin1'), 'N');
    sock.write(wire.startup({ user: 'gss', database: 'main' }));
    await until(() => Buffer.concat(got).length >= 10, 2000, 'the password request');
    assert.deepEqual([...Buffer.concat(got).subarray(1, 10)], [0x52, 0, 0, 0, 8, 0, 0, 0, 3]);
    sock.destroy();
  });
});

test('an oversized message after authentication → 08P01 "message too large", not buffered, session ended', async () => {
  await whileLooping(async () => {
    const c = await RawPg.login(h.port, 'big', await h.issuer.mint('big'));
    const from = h.events().length;
    c.send(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff])); // 'Q' with length 2^31-1, no body
    const rest = await c.closedWith();
    const e = rest.find((m) => m[0] === 0x45)!;
    assert.equal(errorFields(e).C, '08P01');
    assert.match(errorFields(e).M!, /message too large/);
    const refused = await refusedEvent('GW_ERR_FRAME_TOO_LARGE', from);
    const events = h.session(refused.session_id).events;
    const end = events.at(-1)!;
    assert.ok(end.type === 'session.ended' && end.reason === 'protocol_error');
    assert.ok(h.session(refused.session_id).chainOk);
    // The client saw the FATAL, so the recording has it too.
    assert.ok(events.some((x) => x.type === 'frame' && x.direction === 's2c' && x.msg_type === 'E'));
  });
});

test('garbage after authentication (invalid type, invalid length) → 08P01', async () => {
  for (const garbage of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0x51, 0, 0, 0, 2])]) {
    await whileLooping(async () => {
      const c = await RawPg.login(h.port, 'garbage', await h.issuer.mint('garbage'));
      c.send(garbage);
      const e = (await c.closedWith()).find((m) => m[0] === 0x45)!;
      assert.equal(errorFields(e).C, '08P01');
      assert.match(errorFields(e).M!, /invalid message (type|length)/);
    });
  }
});

test('auth timeout closes a silent connection; session.ended reason timeout', async () => {
  await whileLooping(async () => {
    const from = h.events().length;
    const c = await RawPg.open(h.port);
    c.send(wire.startup({ user: 'slow', database: 'main' }));
    await c.next(); // the password request; then say nothing
    const rest = await c.closedWith(4000);
    assert.equal(errorFields(rest.find((m) => m[0] === 0x45)!).C, '08006');
    await h.sink.drain();
    const end = h.events().slice(from).find((e) => e.type === 'session.ended' && e.reason === 'timeout');
    assert.ok(end, 'session.ended with reason timeout');
  });
});

test('a client that stops reading: its upstream is paused (bounded buffering), and it all arrives once it reads again', async () => {
  await whileLooping(async () => {
    const c = await RawPg.login(h.port, 'stalled', await h.issuer.mint('stalled'));
    const sid = h.sessionsOf('stalled')[0]!;
    c.socket.pause();
    c.send(wire.query(`select repeat('x', 1000) from generate_series(1, 100000)`)); // ≈ 100 MB of DataRow
    const recorded = (): number =>
      h.session(sid).events.filter((e): e is FrameEvent => e.type === 'frame' && e.direction === 's2c').reduce((n, f) => n + f.data.length, 0);
    await sleep(1500);
    await h.sink.drain();
    const a = recorded();
    await sleep(700);
    await h.sink.drain();
    const b = recorded();
    assert.equal(a, b, 'nothing more is read from the target while the client does not read');
    assert.ok(a < 40 * 1024 * 1024, `only socket buffers' worth went through (${a} bytes)`);
    assert.equal(h.gw.activeSessions() >= 2, true);
    c.socket.resume();
    const msgs = await c.until('Z', 30_000);
    assert.equal(msgs.filter((m) => m[0] === 0x44).length, 100_000);
    c.send(wire.terminate());
    await c.closedWith();
  });
});

test('fail closed: once the event log has failed, new sessions get FATAL 57P03 "audit log unavailable"', async () => {
  const fc = await startHarness({ issuer: h.issuer });
  try {
    fc.producer.failWith = new LogError('LOG_ERR_IO', 'disk gone', false);
    const c = await connect(fc, 'first'); // its events cannot be made durable → failure latched
    await c.query('select 1').catch(() => {});
    await until(() => fc.sink.failure !== undefined, 3000, 'sink failure');
    const records = fc.sink.stats.records;
    const c2 = await RawPg.open(fc.port);
    c2.send(wire.startup({ user: 'second', database: 'main' }));
    const rest = await c2.closedWith();
    const f = errorFields(rest.find((m) => m[0] === 0x45)!);
    assert.equal(f.C, '57P03');
    assert.equal(f.M, 'audit log unavailable');
    assert.ok(fc.sink.stats.records > records, 'a refusal event was attempted');
    c.end().catch(() => {});
  } finally {
    await fc.close();
  }
});

test('fail closed: a live session is ended (57P03) when the event log fails, not left running unrecorded', async () => {
  const fc = await startHarness({ issuer: h.issuer });
  try {
    const c = await connect(fc, 'live');
    c.on('error', () => {});
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
    const ended = new Promise<Error>((resolve) => c.once('error', resolve));
    fc.producer.failWith = new LogError('LOG_ERR_IO', 'disk gone', false);
    const attempt = c.query('select 2').then(() => undefined, (e: Error) => e);
    const err = (await Promise.race([ended, attempt])) as (Error & { code?: string }) | undefined;
    await until(() => fc.sink.failure !== undefined, 3000, 'sink failure');
    await until(() => fc.gw.activeSessions() === 0, 5000, 'the live session ended');
    const refusal = err ?? (await ended);
    assert.match(String((refusal as { code?: string }).code ?? refusal.message), /57P03|audit log|terminat/i);
    assert.ok(fc.sink.stats.lost_records > 0, 'the unrecordable events are counted as lost');
    await fc.sink.drain();
    assert.equal(fc.sink.pendingBytes, 0, 'pending bytes released: pressure cannot latch forever');
    assert.equal(fc.sink.underPressure, false);
  } finally {
    await fc.close();
  }
});

test('event-log pressure pauses relaying and resumes it when the log catches up', async () => {
  let open!: () => void;
  const ph = await startHarness({ issuer: h.issuer, sink: { high_water_bytes: 256 * 1024, low_water_bytes: 64 * 1024 } });
  try {
    const c = await connect(ph, 'pressured');
    ph.producer.gate = new Promise<void>((r) => (open = r));
    const q = c.query(`select repeat('x', 1000) from generate_series(1, 20000)`);
    await until(() => ph.sink.underPressure, 5000, 'pressure');
    await sleep(300);
    const a = ph.sink.stats.bytes;
    await sleep(500);
    assert.equal(ph.sink.stats.bytes, a, 'no recording (and so no relaying) while the log is under pressure');
    assert.ok(a < 8 * 1024 * 1024, `bounded: ${a}`);
    ph.producer.gate = undefined;
    open();
    assert.equal((await q).rows.length, 20000);
    await c.end();
  } finally {
    ph.producer.gate = undefined;
    open?.();
    await ph.close();
  }
});

test('fail closed: after max_log_stall_ms of backpressure, new sessions are refused at once (57P03), live ones stay paused', async () => {
  let open!: () => void;
  const ph = await startHarness({ issuer: h.issuer, max_log_stall_ms: 300, sink: { high_water_bytes: 256 * 1024, low_water_bytes: 64 * 1024 } });
  try {
    const c = await connect(ph, 'stalled');
    ph.producer.gate = new Promise<void>((r) => (open = r));
    const q = c.query(`select repeat('x', 1000) from generate_series(1, 20000)`);
    await until(() => ph.sink.underPressure, 5000, 'pressure');
    await sleep(400);
    const t0 = Date.now();
    const c2 = await RawPg.open(ph.port);
    c2.send(wire.startup({ user: 'newcomer', database: 'main' }));
    const rest = await c2.closedWith();
    const f = errorFields(rest.find((m) => m[0] === 0x45)!);
    assert.equal(f.C, '57P03');
    assert.match(f.M!, /not keeping up/);
    assert.ok(Date.now() - t0 < 2000, 'refused at once, not after the auth timeout');
    assert.equal(ph.gw.activeSessions(), 1, 'the live session is paused, not ended');
    ph.producer.gate = undefined;
    open();
    assert.equal((await q).rows.length, 20000, 'and completes once the log catches up');
    await c.end();
  } finally {
    ph.producer.gate = undefined;
    open?.();
    await ph.close();
  }
});

test('max_sessions: one connection too many gets 53300; the others keep working', async () => {
  const mh = await startHarness({ issuer: h.issuer, postgres: { max_sessions: 2 } });
  try {
    const a = await connect(mh, 'one');
    const b = await connect(mh, 'two');
    const c3 = await RawPg.open(mh.port);
    c3.send(wire.startup({ user: 'three', database: 'main' }));
    const rest = await c3.closedWith();
    assert.equal(errorFields(rest.find((m) => m[0] === 0x45)!).C, '53300');
    assert.equal((await a.query('select 1 as x')).rows[0].x, 1);
    await b.end();
    await until(() => mh.gw.activeSessions() === 1, 3000, 'b gone');
    const d = await connect(mh, 'four');
    assert.equal((await d.query('select 2 as x')).rows[0].x, 2, 'room again after one left');
    await a.end();
    await d.end();
  } finally {
    await mh.close();
  }
});

test('close(): sessions end with gateway_shutdown (client gets 57P01) and the sink is drained', async () => {
  const sh = await startHarness({ issuer: h.issuer });
  const c = await connect(sh, 'leaving');
  const err = new Promise<{ code?: string }>((r) => c.once('error', r));
  await sh.close();
  assert.equal((await err).code, '57P01');
  assert.equal(sh.gw.activeSessions(), 0);
  const end = sh.events().find((e) => e.type === 'session.ended');
  assert.ok(end && end.type === 'session.ended' && end.reason === 'gateway_shutdown');
  assert.equal(sh.sink.pendingBytes, 0);
});
