import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataPathYield } from './yield.ts';

const settled = async (p: Promise<void>, ms = 20): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('an idle gateway: no wait at all', async () => {
  const y = new DataPathYield({ max_defer_ms: 1000, max_batch_records: 100 });
  assert.equal(await settled(y.wait(), 5), true);
  assert.equal(y.stats.deferrals, 0);
});

test('a busy gateway: ingest waits until it is no longer busy', async () => {
  const y = new DataPathYield({ max_defer_ms: 5000, max_batch_records: 100 });
  y.setBusy(true);
  const w = y.wait();
  assert.equal(await settled(w), false, 'still waiting while busy');
  y.setBusy(false);
  assert.equal(await settled(w), true);
  assert.equal(y.stats.deferrals, 1);
  assert.ok(y.stats.deferred_ms >= 15);
});

test('sustained load: one window of deferral, then ingest drains the log before it may defer again', async () => {
  const y = new DataPathYield({ max_defer_ms: 60, max_batch_records: 100 });
  y.setBusy(true);
  const t0 = performance.now();
  await y.wait();
  const waited = performance.now() - t0;
  assert.ok(waited >= 55 && waited < 1000, `waited ${waited} ms`);
  assert.equal(y.stats.windows_exhausted, 1);
  // Disarmed: full batches go through at once while still busy.
  assert.equal(await settled(y.wait(), 5), true);
  y.batchDone(100);
  assert.equal(await settled(y.wait(), 5), true, 'a full batch: not caught up yet');
  y.batchDone(7); // the log is drained: deferral re-arms
  assert.equal(await settled(y.wait(), 20), false, 'defers again');
});

test('each busy episode gets its own window: after the gateway went idle, a new burst defers a full window', async () => {
  const y = new DataPathYield({ max_defer_ms: 80, max_batch_records: 100 });
  y.setBusy(true);
  const first = y.wait();
  await new Promise((r) => setTimeout(r, 30));
  y.setBusy(false);
  await first;
  y.setBusy(true);
  const t0 = performance.now();
  await y.wait();
  const waited = performance.now() - t0;
  assert.ok(waited >= 75, `a new full window (waited ${waited} ms)`);
  assert.equal(y.stats.deferrals, 2);
});

test('release ends a wait (shutdown); max_defer_ms 0 never waits', async () => {
  const y = new DataPathYield({ max_defer_ms: 60_000, max_batch_records: 100 });
  y.setBusy(true);
  const w = y.wait();
  assert.equal(await settled(w), false);
  y.release();
  assert.equal(await settled(w), true);
  const off = new DataPathYield({ max_defer_ms: 0, max_batch_records: 100 });
  off.setBusy(true);
  assert.equal(await settled(off.wait(), 5), true);
});
