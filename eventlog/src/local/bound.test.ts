import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LogError, type ConsumedRecord } from '../types.ts';
import { LocalEventLog } from './log.ts';
import { RECORD_OVERHEAD } from './record.ts';
import { rec, tempDir, track, waitFor } from './testutil.ts';

const RECORD_BYTES = 500;
const value = (i: number) => Buffer.alloc(RECORD_BYTES - RECORD_OVERHEAD - 1, i % 256); // key 'k' = 1 byte
const small = { segment_bytes: 4096, max_bytes: 16384, max_record_bytes: 1024, poll_interval_ms: 20 };

async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(join(dir, 't'))) if (f.endsWith('.log')) total += (await stat(join(dir, 't', f))).size;
  return total;
}

test("size bound, 'backpressure': sends wait (never reject) until consumers free space; nothing lost", async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, ...small });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  const p = log.producer();
  const N = 60; // 30 000 bytes: about twice the bound
  const sends = [...Array(N).keys()].map((i) => track(p.send('t', [rec('k', value(i))])));
  await waitFor(() => log.usage().blockedSends > 0 && log.usage().pendingBytes === 0, 'sends to block');
  await new Promise((r) => setTimeout(r, 200)); // no consumer has committed: nothing may be deleted
  const u = log.usage();
  assert.ok(u.usedBytes <= small.max_bytes, `used ${u.usedBytes}`);
  assert.ok(await diskBytes(dir) <= small.max_bytes);
  assert.equal(log.isFull(), true);
  assert.ok(sends.some((s) => !s.settled), 'some sends still waiting');
  assert.ok(sends.every((s) => s.error === undefined), 'none rejected');
  const firstBlocked = sends.findIndex((s) => !s.settled);
  assert.ok(sends.slice(firstBlocked).every((s) => !s.settled), 'FIFO: nothing after a blocked send got through');

  // A consumer acknowledges; retention deletes consumed segments; the blocked sends proceed.
  const got: ConsumedRecord[] = [];
  let maxUsed = 0;
  const c = log.consumer({ groupId: 'sink', topics: ['t'], maxBatchRecords: 4 });
  await c.run(async (b) => {
    maxUsed = Math.max(maxUsed, log.usage().usedBytes);
    got.push(...b.records);
  });
  await waitFor(() => got.length === N, `all ${N} records (got ${got.length})`, 10_000);
  await c.stop();
  assert.ok(sends.every((s) => s.settled && s.error === undefined));
  assert.deepEqual(got.map((r) => r.value[0]), [...Array(N).keys()].map((i) => i % 256), 'in order, none lost');
  assert.ok(maxUsed <= small.max_bytes);
  assert.ok(Number(log.usage().topics['t']!.startOffset) > 0, 'old segments were deleted');
  assert.equal(log.isFull(), false);
});

test("size bound, 'fail_closed': sends reject LOG_ERR_FULL (not retriable); space freed by commits is reused", async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir, ...small, when_full: 'fail_closed' });
  t.after(() => log.close());
  await log.ensureTopics(['t']);
  const p = log.producer();
  let accepted = 0;
  let error: unknown;
  for (let i = 0; i < 100 && !error; i++) {
    try {
      await p.send('t', [rec('k', value(i))]);
      accepted++;
    } catch (err) {
      error = err;
    }
  }
  assert.ok(error instanceof LogError, String(error));
  assert.equal(error.code, 'LOG_ERR_FULL');
  assert.equal(error.retriable, false);
  assert.equal(accepted, Math.floor(small.max_bytes / RECORD_BYTES));
  assert.equal(log.isFull(), true);
  assert.equal(log.usage().rejectedFull, 1);
  assert.ok(await diskBytes(dir) <= small.max_bytes);

  // Consume and commit everything: retention can now drop the consumed (non-active) segments.
  const got: ConsumedRecord[] = [];
  const c = log.consumer({ groupId: 'sink', topics: ['t'] });
  await c.run(async (b) => void got.push(...b.records));
  await waitFor(() => got.length === accepted, 'consumer to catch up');
  await c.stop();
  await p.send('t', [rec('k', value(999))]);
  const u = log.usage();
  assert.ok(u.usedBytes <= u.retainBytes + RECORD_BYTES, `space was reclaimed: ${u.usedBytes}`);
  assert.ok(Number(u.topics['t']!.startOffset) > 0, 'consumed segments deleted');
  assert.equal(log.isFull(), false);
});
