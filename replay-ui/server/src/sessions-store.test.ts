import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCursor, encodeCursor, isoMicros, parseTimeParam } from './sessions-store.ts';
import { ApiError } from './errors.ts';

test('isoMicros keeps microseconds', () => {
  assert.equal(isoMicros(1_767_225_600_000_000n), '2026-01-01T00:00:00.000000Z');
  assert.equal(isoMicros(1_767_225_600_123_456n), '2026-01-01T00:00:00.123456Z');
  assert.equal(isoMicros(0n), '1970-01-01T00:00:00.000000Z');
});

test('parseTimeParam: µs integers and ISO with up to µs, offsets honoured', () => {
  assert.equal(parseTimeParam('1767225600123456', 'from'), 1_767_225_600_123_456n);
  assert.equal(parseTimeParam('2026-01-01T00:00:00Z', 'from'), 1_767_225_600_000_000n);
  assert.equal(parseTimeParam('2026-01-01T00:00:00.123456Z', 'from'), 1_767_225_600_123_456n);
  assert.equal(parseTimeParam('2026-01-01T00:00:00.5Z', 'from'), 1_767_225_600_500_000n);
  assert.equal(parseTimeParam('2026-01-01T01:00:00+01:00', 'from'), 1_767_225_600_000_000n);
  for (const bad of ['yesterday', '2026-01-01', '2026-13-01T00:00:00Z', '-5', '1e9']) {
    assert.throws(() => parseTimeParam(bad, 'from'), (e: unknown) => e instanceof ApiError && e.code === 'API_ERR_BAD_REQUEST');
  }
});

test('cursor round-trips and refuses anything else', () => {
  const c = { t: 1_767_225_600_123_456n, id: 'sess-1' };
  assert.deepEqual(decodeCursor(encodeCursor(c)), c);
  for (const bad of ['x', Buffer.from('{"v":2,"t":"1","id":"a"}').toString('base64url'), Buffer.from('{"v":1,"t":"-1","id":"a"}').toString('base64url')]) {
    assert.throws(() => decodeCursor(bad), (e: unknown) => e instanceof ApiError && e.code === 'API_ERR_BAD_CURSOR');
  }
});
