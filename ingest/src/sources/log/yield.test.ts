import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataPathYield } from './yield.ts';

const settled = async (p: Promise<void>, ms = 20): Promise<boolean> => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('an idle gateway: no wait at all', async () => {
  const y = new DataPathYield({ max_defer_ms: 1000 });
  assert.equal(await settled(y.wait(), 5), true);
  assert.equal(y.stats.deferrals, 0);
});

test('a busy gateway: ingest waits until it is no longer busy', async () => {
  const y = new DataPathYield({ max_defer_ms: 5000 });
  y.setBusy(true);
  const w = y.wait();
  assert.equal(await settled(w), false, 'still waiting while busy');
  y.setBusy(false);
  assert.equal(await settled(w), true);
  assert.equal(y.stats.deferrals, 1);
  assert.ok(y.stats.deferred_ms >= 15);
});

test('sustained load: one window of deferral, then ingest reads until the log is drained before it may defer again', async () => {
  const y = new DataPathYield({ max_defer_ms: 60, caught_up_gap_ms: 40 });
  y.setBusy(true);
  const t0 = performance.now();
  await y.wait();
  const waited = performance.now() - t0;
  assert.ok(waited >= 55 && waited < 1000, `waited ${waited} ms`);
  assert.equal(y.stats.windows_exhausted, 1);
  // Disarmed: a backlog's batches, arriving back to back, go through at once while still busy —
  // whatever their size (the local log caps reads at 1 MiB).
  for (let i = 0; i < 5; i++) {
    assert.equal(await settled(y.wait(), 5), true, `backlog batch ${i}`);
    y.batchDone();
  }
  // The log had nothing for 40 ms: caught up, so deferral re-arms.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await settled(y.wait(), 20), false, 'defers again');
});

test('each busy episode gets its own window: after the gateway went idle, a new burst defers a full window', async () => {
  const y = new DataPathYield({ max_defer_ms: 80 });
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
  const y = new DataPathYield({ max_defer_ms: 60_000 });
  y.setBusy(true);
  const w = y.wait();
  assert.equal(await settled(w), false);
  y.release();
  assert.equal(await settled(w), true);
  const off = new DataPathYield({ max_defer_ms: 0 });
  off.setBusy(true);
  assert.equal(await settled(off.wait(), 5), true);
});
