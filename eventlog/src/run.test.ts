import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogError } from './types.ts';
import { RecordRunBuilder, recordsOf, runOf, runSizes, type RecordRun } from './run.ts';
import { LocalEventLog } from './local/log.ts';
import { FORMAT_AT, KEY_LENGTH_AT, encodeUnstamped, encodedSize } from './local/record.ts';
import { consumeN, rec, tempDir, track, waitFor } from './local/testutil.ts';

/** A record run with values written in place, as the gateway's recorder writes frames. */
function inPlace(b: RecordRunBuilder, key: string, value: Buffer): void {
  const at = b.beginValue(Buffer.from(key));
  if (at + value.length > b.buf.length) b.growValue(at, value.length);
  b.buf.set(value, at);
  b.endValue(at + value.length);
}

test('a run holds added and in-place records alike; recordsOf gives them back', () => {
  const b = new RecordRunBuilder(256);
  b.add(rec('s1', 'first', { type: 'session.started', 'ünï': 'cödé' }));
  inPlace(b, 's2', Buffer.from([0, 1, 2, 255]));
  inPlace(b, 'sess-ü', Buffer.alloc(5000, 9)); // past the builder's room: growValue moves the record
  b.add(rec('', Buffer.alloc(0)));
  const run = b.take()!;
  assert.equal(run.count, 4);
  assert.deepEqual(runSizes(run, Infinity).reduce((a, x) => a + x, 0), run.bytes);
  const got = recordsOf(run);
  assert.deepEqual(
    got.map((r) => [r.key, r.headers, r.value.length]),
    [
      ['s1', { type: 'session.started', 'ünï': 'cödé' }, 5],
      ['s2', undefined, 4],
      ['sess-ü', undefined, 5000],
      ['', undefined, 0],
    ],
  );
  assert.equal(got[0]!.value.toString(), 'first');
  assert.ok(got[2]!.value.equals(Buffer.alloc(5000, 9)));
  assert.equal(b.take(), undefined, 'nothing added since the last take');
});

test('a builder reuses a recycled run buffer, and not one still in use', () => {
  const b = new RecordRunBuilder(1024);
  b.add(rec('k', 'a'));
  const first = b.take()!;
  b.add(rec('k', 'b'));
  const second = b.take()!;
  assert.notEqual(second.buf, first.buf, 'a run not yet recycled is never written again');
  b.recycle(first);
  // The builder was already writing into a fresh buffer; the recycled one takes the run after it.
  b.add(rec('k', 'c'));
  const third = b.take()!;
  b.add(rec('k', 'd'));
  const fourth = b.take()!;
  assert.equal(fourth.buf, first.buf);
  assert.notEqual(third.buf, first.buf);
  assert.deepEqual([second, third, fourth].map((r) => recordsOf(r)[0]!.value.toString()), ['b', 'c', 'd']);
});

test('a builder refuses misuse: a value begun and not ended, bad records', () => {
  const b = new RecordRunBuilder(1024);
  b.beginValue(Buffer.from('k'));
  assert.throws(() => b.add(rec('k', 'x')), /not ended/);
  assert.throws(() => b.take(), /not ended/);
  assert.throws(() => b.endValue(2), /out of place/);
  const fresh = new RecordRunBuilder(1024);
  assert.throws(() => fresh.beginValue(Buffer.alloc(70_000)), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD');
  assert.throws(() => fresh.add({ key: 'k', value: 'no buffer' as never }), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD');
  assert.throws(() => fresh.endValue(10), /out of place/);
});

test('records written straight into the run (reserveRecords / recordsWritten) join the others in order', () => {
  const b = new RecordRunBuilder(64);
  b.add(rec('a', 'first'));
  // A trusted writer (the native batch sealer) writes whole records from where it was told.
  const r1 = rec('b', Buffer.alloc(300, 1));
  const r2 = rec('c', 'third');
  const at = b.reserveRecords(encodedSize(r1) + encodedSize(r2));
  assert.ok(b.buf.length >= at + encodedSize(r1) + encodedSize(r2));
  const end = encodeUnstamped(b.buf, encodeUnstamped(b.buf, at, r1), r2);
  b.recordsWritten(end, 2);
  inPlace(b, 'd', Buffer.from('fourth'));
  const run = b.take()!;
  assert.equal(run.count, 4);
  assert.deepEqual(recordsOf(run).map((r) => r.key), ['a', 'b', 'c', 'd']);
  // Misuse is refused: a count that does not match the bytes, an end outside the buffer or
  // behind the run, and with a value written in place still open.
  const m = new RecordRunBuilder(64);
  const p = m.reserveRecords(100);
  assert.throws(() => m.recordsWritten(p + 10, 0), /out of place/);
  assert.throws(() => m.recordsWritten(p, 1), /out of place/);
  assert.throws(() => m.recordsWritten(m.buf.length + 1, 1), /out of place/);
  m.add(rec('x', 'y'));
  assert.throws(() => m.recordsWritten(0, 1), /out of place/);
  // A record whose length prefix does not tile the span (as a bad writer would leave it).
  const at2 = m.reserveRecords(200);
  const end2 = encodeUnstamped(m.buf, at2, rec('z', 'value'));
  m.buf.writeUInt32BE(2, at2);
  assert.throws(() => m.recordsWritten(end2, 1), /out of place/);
  m.buf.writeUInt32BE(end2 - at2 - 4 + 1, at2);
  assert.throws(() => m.recordsWritten(end2, 1), /out of place/);
  m.buf.writeUInt32BE(end2 - at2 - 4, at2);
  m.recordsWritten(end2, 1);
  m.beginValue(Buffer.from('k'));
  assert.throws(() => m.reserveRecords(10), /not ended/);
});

test('runSizes refuses a malformed run: bad lengths, a wrong count, a record over the limit', () => {
  const good = runOf([rec('k', 'abc'), rec('k', 'defg')]);
  const code = (c: string) => (e: LogError) => e.code === c;
  assert.throws(() => runSizes({ ...good, count: 3 }, Infinity), code('LOG_ERR_INVALID_RECORD'));
  assert.throws(() => runSizes({ ...good, bytes: good.bytes - 1 }, Infinity), code('LOG_ERR_INVALID_RECORD'));
  assert.throws(() => runSizes({ ...good, bytes: good.bytes + 1 }, Infinity), code('LOG_ERR_INVALID_RECORD'));
  const bent = Buffer.from(good.buf);
  bent.writeUInt32BE(0x7fffffff, 0);
  assert.throws(() => runSizes({ ...good, buf: bent }, Infinity), code('LOG_ERR_INVALID_RECORD'));
  assert.throws(() => runSizes(good, 20), code('LOG_ERR_TOO_LARGE'));
  assert.throws(() => runSizes({ buf: 'x', bytes: 1, count: 1 } as never, Infinity), code('LOG_ERR_INVALID_RECORD'));
});

test('the local log takes a run: offsets in order, CRCs that check out on reopen, across segment rolls', async (t) => {
  const dir = await tempDir(t);
  let log = await LocalEventLog.open({ dir, segment_bytes: 4096 });
  await log.ensureTopics(['frames']);
  const b = new RecordRunBuilder(512);
  const values: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const v = Buffer.alloc(10 + (i % 90), i & 0xff);
    values.push(v);
    if (i % 3 === 0) b.add(rec(`s${i % 4}`, v, { type: 'frame' }));
    else inPlace(b, `s${i % 4}`, v);
  }
  b.add(rec('s0', Buffer.alloc(6000, 1))); // larger than a segment: one of its own
  values.push(Buffer.alloc(6000, 1));
  const run = b.take()!;
  await log.producer().sendRun!('frames', run);
  run.buf.fill(0); // the run is the caller's again: the log kept its own copy
  await log.producer().send('frames', [rec('s9', 'after')]);
  values.push(Buffer.from('after'));
  await log.close();

  log = await LocalEventLog.open({ dir, segment_bytes: 4096 });
  t.after(() => log.close());
  assert.equal(log.recovery.droppedBytes, 0, 'every record of the run checks out (CRC, framing, offset)');
  const got = await consumeN(log, 'g', 'frames', values.length);
  assert.deepEqual(got.map((r) => Number(r.offset)), [...values.keys()]);
  got.forEach((r, i) => assert.ok(r.value.equals(values[i]!), `record ${i}`));
  assert.deepEqual(got[3]!.headers, { type: 'frame' });
  assert.equal(got[4]!.headers, undefined);
  assert.ok(log.usage().topics.frames!.segments > 5, 'the run was split across segments');
});

test('the local log refuses a malformed run and keeps serving', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, max_record_bytes: 1024 });
  t.after(() => log.close());
  await log.ensureTopics(['frames']);
  const p = log.producer();
  const good = runOf([rec('k', 'v')]);
  const bad: RecordRun = { ...good, count: 2 };
  await assert.rejects(p.sendRun!('frames', bad), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD');
  await assert.rejects(p.sendRun!('frames', runOf([rec('k', Buffer.alloc(2000))])), (e: LogError) => e.code === 'LOG_ERR_TOO_LARGE');
  await assert.rejects(p.sendRun!('nope', good), (e: LogError) => e.code === 'LOG_ERR_UNKNOWN_TOPIC');
  await p.sendRun!('frames', good);
  const got = await consumeN(log, 'g', 'frames', 1);
  assert.equal(got[0]!.value.toString(), 'v');
});

test('a run that does not fit waits (backpressure) and lands in order once space is freed', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, segment_bytes: 8192, max_bytes: 40_000, max_record_bytes: 4096, retain_bytes: 10_000, poll_interval_ms: 10 });
  t.after(() => log.close());
  await log.ensureTopics(['frames']);
  const p = log.producer();
  const batch = (tag: string) => runOf(Array.from({ length: 10 }, (_, i) => rec('k', Buffer.alloc(1000, `${tag}${i}`))));
  for (let i = 0; i < 3; i++) await p.sendRun!('frames', batch(`a${i}`));
  const blocked = track(p.sendRun!('frames', batch('z')));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(blocked.settled, false, 'the run waits for space');
  // A consumer reads and commits everything: retention frees the old segments.
  const c = log.consumer({ groupId: 'g', topics: ['frames'] });
  let seen = 0;
  await c.run(async (b) => {
    seen += b.records.length;
  });
  t.after(() => c.stop());
  await waitFor(() => blocked.settled, 'the blocked run to land', 10_000);
  assert.equal(blocked.error, undefined);
  await waitFor(() => seen === 40, `all 40 records consumed (got ${seen})`, 10_000);
});

test('the local log refuses a run whose records are malformed inside (it would stamp a valid CRC over them)', async (t) => {
  const dir = await tempDir(t);
  let log = await LocalEventLog.open({ dir });
  await log.ensureTopics(['frames']);
  const p = log.producer();
  const good = runOf([rec('key', 'value', { type: 'frame' })]);
  const bend = (what: string, fn: (b: Buffer) => void) => {
    const buf = Buffer.from(good.buf.subarray(0, good.bytes));
    fn(buf);
    return { what, run: { buf, bytes: good.bytes, count: 1 } };
  };
  const bad = [
    bend('format byte', (b) => (b[FORMAT_AT] = 7)),
    bend('key length past the record', (b) => b.writeUInt16BE(0xfff0, KEY_LENGTH_AT)),
    bend('header count past the record', (b) => b.writeUInt16BE(50, KEY_LENGTH_AT + 2 + 3)),
    bend('value length short', (b) => b.writeUInt32BE(3, good.bytes - 5 - 4)),
    bend('value length long', (b) => b.writeUInt32BE(1 << 30, good.bytes - 5 - 4)),
  ];
  for (const { what, run } of bad) {
    await assert.rejects(p.sendRun!('frames', run), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD', what);
    assert.throws(() => recordsOf(run), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD', what);
  }
  await assert.rejects(p.sendRun!('frames', { ...good, count: 0 }), (e: LogError) => e.code === 'LOG_ERR_INVALID_RECORD', 'records the count leaves out');
  await p.sendRun!('frames', good);
  await log.close();
  log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  assert.equal(log.recovery.droppedBytes, 0);
  const got = await consumeN(log, 'g', 'frames', 1);
  assert.deepEqual([got[0]!.key, got[0]!.value.toString(), got[0]!.headers], ['key', 'value', { type: 'frame' }]);
});

test('fail_closed: a run that does not fit is refused with LOG_ERR_FULL and every record of it is counted', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, segment_bytes: 8192, max_bytes: 40_000, max_record_bytes: 4096, when_full: 'fail_closed', poll_interval_ms: 10 });
  t.after(() => log.close());
  await log.ensureTopics(['frames']);
  const p = log.producer();
  const batch = () => runOf(Array.from({ length: 10 }, () => rec('k', Buffer.alloc(1000, 1))));
  for (let i = 0; i < 3; i++) await p.sendRun!('frames', batch());
  await assert.rejects(p.sendRun!('frames', batch()), (e: LogError) => e.code === 'LOG_ERR_FULL');
  assert.equal(log.usage().rejectedFull, 10);
});
