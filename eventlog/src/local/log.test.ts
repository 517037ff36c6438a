import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LogError, type ConsumedRecord } from '../types.ts';
import { LocalEventLog } from './log.ts';
import { LocalLogErrors } from './errors.ts';
import { parseLocalEventLogConfig } from './config.ts';
import { consumeN, rec, tempDir, waitFor } from './testutil.ts';

test('round trip: binary values, headers, keys, offsets, timestamps', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  await log.ensureTopics(['frames']);
  const binary = Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]);
  const big = Buffer.alloc(200_000, 7);
  const before = Date.now();
  await log.producer().send('frames', [
    rec('s1', binary, { type: 'frame', 'ünï': 'cödé ✓', empty: '' }),
    rec('', Buffer.alloc(0)),
    rec('s2', big),
  ]);
  const got = await consumeN(log, 'g', 'frames', 3);
  assert.equal(got.length, 3);
  assert.deepEqual(got.map((r) => r.offset), ['0', '1', '2']);
  assert.deepEqual(got[0]!.value, binary);
  assert.deepEqual(got[0]!.headers, { type: 'frame', 'ünï': 'cödé ✓', empty: '' });
  assert.equal(got[0]!.key, 's1');
  assert.equal(got[1]!.key, '');
  assert.equal(got[1]!.value.length, 0);
  assert.equal(got[1]!.headers, undefined);
  assert.ok(got[2]!.value.equals(big));
  assert.equal(got[0]!.topic, 'frames');
  assert.equal(got[0]!.partition, 0);
  assert.ok(got[0]!.timestamp >= before && got[0]!.timestamp <= Date.now());
});

test('many concurrent sends: one group commit covers many, order per call and key kept', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, fsync_interval_ms: 5 });
  t.after(() => log.close());
  await log.ensureTopics(['a', 'b']);
  const p = log.producer();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 2000; i++) {
    const topic = i % 2 === 0 ? 'a' : 'b';
    sends.push(p.send(topic, [rec(`k${i % 7}`, `v${i}`), rec(`k${i % 7}`, `w${i}`)]));
  }
  await Promise.all(sends);
  // 2000 sends must not have become 2000 writes/fsyncs.
  assert.ok(log.writerStats.fsyncs < 200, `fsyncs: ${log.writerStats.fsyncs}`);
  assert.equal(log.writerStats.records, 4000);
  const a = await consumeN(log, 'g', 'a', 2000);
  assert.equal(a.length, 2000);
  const expected: string[] = [];
  for (let i = 0; i < 2000; i += 2) expected.push(`v${i}`, `w${i}`);
  assert.deepEqual(a.map((r) => r.value.toString()), expected);
  assert.deepEqual(a.map((r) => Number(r.offset)), [...Array(2000).keys()]);
});

test('segments roll at segment_bytes and are named by base offset; reads cross segments', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, segment_bytes: 4096, max_bytes: 1 << 20, max_record_bytes: 2048 });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  const p = log.producer();
  for (let i = 0; i < 100; i++) await p.send('t', [rec('k', Buffer.alloc(300, i))]);
  const files = (await readdir(join(dir, 't'))).filter((f) => f.endsWith('.log')).sort();
  assert.ok(files.length >= 8, `segments: ${files.join(',')}`);
  assert.equal(files[0], '00000000000000000000.log');
  assert.match(files[1]!, /^\d{20}\.log$/);
  assert.ok(Number(files[1]!.slice(0, 20)) > 0);
  const got = await consumeN(log, 'g', 't', 100);
  assert.deepEqual(got.map((r) => r.value[0]), [...Array(100).keys()]);
  assert.equal(log.usage().topics['t']!.segments, files.length);
});

test('consumer restarts where its group committed, across reopen; other groups are independent', async (t) => {
  const dir = await tempDir(t);
  let log = await LocalEventLog.open({ dir });
  await log.ensureTopics(['t']);
  await log.producer().send('t', [...Array(10).keys()].map((i) => rec('k', `r${i}`)));
  const first = await consumeN(log, 'g1', 't', 10);
  assert.equal(first.length, 10);
  await log.close();

  log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  await log.producer().send('t', [rec('k', 'r10'), rec('k', 'r11')]);
  const again = await consumeN(log, 'g1', 't', 2);
  assert.deepEqual(again.map((r) => r.value.toString()), ['r10', 'r11']);
  assert.equal(again[0]!.offset, '10');
  const other = await consumeN(log, 'g2', 't', 12);
  assert.equal(other.length, 12);
  assert.equal(other[0]!.offset, '0');
});

test('fromBeginning: false starts at the end', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  await log.producer().send('t', [rec('k', 'old')]);
  const got: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: 'late', topics: ['t'], fromBeginning: false });
  await c.run(async (b) => void got.push(...b.records));
  await log.producer().send('t', [rec('k', 'new')]);
  await waitFor(() => got.length >= 1, 'the new record');
  await c.stop();
  assert.deepEqual(got.map((r) => r.value.toString()), ['new']);
});

test('tail-follow wakes promptly on an in-process append (well under the poll interval)', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, poll_interval_ms: 5000 });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  const got: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: 'g', topics: ['t'] });
  await c.run(async (b) => void got.push(...b.records));
  await new Promise((r) => setTimeout(r, 50)); // let it go idle
  await log.producer().send('t', [rec('k', 'x')]);
  // With only the 5 s poll this would time out.
  await waitFor(() => got.length === 1, 'wake-up', 2000);
  await c.stop();
});

test('maxBatchRecords bounds batches; handler rejection redelivers the same batch, nothing committed', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  await log.producer().send('t', [...Array(25).keys()].map((i) => rec('k', `r${i}`)));
  const batches: string[][] = [];
  let failures = 0;
  const c = log.consumer({ groupId: 'g', topics: ['t'], maxBatchRecords: 10, retryBackoffMs: 20 });
  await c.run(async (b) => {
    batches.push(b.records.map((r) => r.offset));
    if (b.records[0]!.offset === '10' && failures < 2) {
      failures++;
      throw new Error('sink down');
    }
  });
  await waitFor(() => batches.some((b) => b.includes('24')), 'last batch');
  await c.stop();
  assert.ok(batches.every((b) => b.length <= 10));
  assert.deepEqual(batches.map((b) => b[0]), ['0', '10', '10', '10', '20']);
  assert.deepEqual(batches[1], batches[3]);
  // The group committed through offset 24: it next sees only a new record.
  await log.producer().send('t', [rec('k', 'r25')]);
  const after = await consumeN(log, 'g', 't', 1);
  assert.deepEqual(after.map((r) => r.offset), ['25']);
});

test('one active member per group in a process', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  t.after(() => log.close());
  const c1 = log.consumer({ groupId: 'g', topics: ['t'] });
  await c1.run(async () => {});
  const c2 = log.consumer({ groupId: 'g', topics: ['t'] });
  await assert.rejects(c2.run(async () => {}), (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_GROUP_BUSY');
  await c1.stop();
});

test('send errors: unknown topic, invalid topic, bad record, oversized record, closed producer', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, max_record_bytes: 1024, segment_bytes: 4096, max_bytes: 1 << 20 });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  const p = log.producer();
  const code = (c: string) => (e: unknown) => e instanceof LogError && e.code === c && e.retriable === false;
  await assert.rejects(p.send('nope', [rec('k', 'v')]), code('LOG_ERR_UNKNOWN_TOPIC'));
  await assert.rejects(p.send('../x', [rec('k', 'v')]), code('LOG_ERR_INVALID_TOPIC'));
  await assert.rejects(log.ensureTopics(['a/b']), code('LOG_ERR_INVALID_TOPIC'));
  await assert.rejects(p.send('t', [{ key: 'k', value: 'str' as unknown as Buffer }]), code('LOG_ERR_INVALID_RECORD'));
  await assert.rejects(p.send('t', [rec('k', Buffer.alloc(2000))]), code('LOG_ERR_TOO_LARGE'));
  await p.close();
  await assert.rejects(p.send('t', [rec('k', 'v')]), code('LOG_ERR_CLOSED'));
});

test('config: defaults, frozen, every error reported at once, unknown keys refused', () => {
  const c = parseLocalEventLogConfig({ dir: '/x' });
  assert.equal(c.segment_bytes, 64 * 1024 * 1024);
  assert.equal(c.fsync, 'group');
  assert.equal(c.when_full, 'backpressure');
  assert.equal(c.max_bytes, 10 * 1024 ** 3);
  assert.equal(c.retain_bytes, Math.floor(c.max_bytes * 0.75));
  assert.ok(Object.isFrozen(c));
  assert.throws(
    () => parseLocalEventLogConfig({ dir: '', fsync: 'sometimes', bogus: 1 }),
    (e: unknown) => e instanceof LogError && e.code === 'LOG_ERR_CONFIG' && /\/dir/.test(e.message) && /\/fsync/.test(e.message) && /bogus/.test(e.message),
  );
});

test('error codes are unique, LOG_ERR_-prefixed and documented', () => {
  const codes = Object.keys(LocalLogErrors);
  assert.equal(new Set(codes).size, codes.length);
  for (const [code, info] of Object.entries(LocalLogErrors)) {
    assert.match(code, /^LOG_ERR_[A-Z_]+$/);
    assert.ok(info.description.length > 10);
    assert.equal(typeof info.retriable, 'boolean');
  }
});

test("fsync policies: 'always' and 'group' fsync every commit, 'never' none; all round-trip", async (t) => {
  for (const fsync of ['always', 'group', 'never'] as const) {
    const dir = await tempDir(t);
    const log = await LocalEventLog.open({ dir, fsync });
    await log.ensureTopics(['t']);
    const p = log.producer();
    await Promise.all([...Array(50).keys()].map((i) => p.send('t', [rec('k', `v${i}`)])));
    const st = { ...log.writerStats };
    assert.equal(st.records, 50, fsync);
    assert.ok(st.flushes >= 1 && st.flushes < 50, `${fsync}: ${st.flushes} commits for 50 concurrent sends`);
    assert.equal(st.fsyncs, fsync === 'never' ? 0 : st.flushes, fsync);
    const got = await consumeN(log, 'g', 't', 50);
    assert.deepEqual(got.map((r) => r.value.toString()), [...Array(50).keys()].map((i) => `v${i}`));
    await log.close();
  }
});
