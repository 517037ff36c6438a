/** The UI's formatting and routing are plain functions: tested in node, no browser needed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytes, duration, microsBetween, when } from './format.ts';

test('durations from µs to hours', () => {
  assert.equal(duration(999), '999 µs');
  assert.equal(duration(2_950), '2.95 ms');
  assert.equal(duration(29_100), '29.1 ms');
  assert.equal(duration(4_500_000), '4.50 s');
  assert.equal(duration(125_000_000), '2 min 5 s');
  assert.equal(duration(3 * 3600e6 + 60e6), '3 h 1 min');
});

test('bytes in binary units', () => {
  assert.equal(bytes(269), '269 B');
  assert.equal(bytes(1536), '1.5 KiB');
  assert.equal(bytes(5 * 1024 * 1024), '5.0 MiB');
});

test('timestamps keep their microseconds in differences', () => {
  assert.equal(when('2026-01-10T12:00:06.000123Z'), '2026-01-10 12:00:06');
  assert.equal(microsBetween('2026-01-10T12:00:06.000123Z', '2026-01-10T12:00:07.000124Z'), 1_000_001);
  assert.equal(microsBetween('2026-01-10T12:00:06.999999Z', '2026-01-10T12:00:07.000000Z'), 1);
});
