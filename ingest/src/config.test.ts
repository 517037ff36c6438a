import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadIngestConfig } from './config.ts';
import { IngestError } from './errors.ts';

test('defaults from the schema, result frozen', () => {
  const c = loadIngestConfig({ ingest: {} });
  assert.equal(c.group_id, 'vigil-ingest');
  assert.deepEqual(c.topics, ['vigil.frames.v1']);
  assert.equal(c.flush_interval_ms, 0);
  assert.ok(c.max_batch_rows > 0 && c.retry_backoff_ms > 0 && c.retry_max_ms > 0);
  assert.ok(Object.isFrozen(c));
  assert.equal(loadIngestConfig({ max_batch_rows: 5 }).max_batch_rows, 5, 'bare section accepted');
});

test('unknown keys and bad values are all reported at once', () => {
  assert.throws(
    () => loadIngestConfig({ ingest: { max_batch_rows: 0, retry_backoff_ms: 'x', bogus: 1 } as never }),
    (e: IngestError) => e.code === 'ING_ERR_CONFIG' && /max_batch_rows/.test(e.message) && /retry_backoff_ms/.test(e.message) && /bogus|additional/i.test(e.message),
  );
});
