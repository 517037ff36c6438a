import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogRecord, Producer } from '@vigil/eventlog/types';
import { LogError } from '@vigil/eventlog/types';
import { EventSink } from './sink.ts';
import { decode, verifyChain, type ChainedEvent } from '@vigil/schemas';

class FlakyProducer implements Producer {
  delivered: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failures: Error[] = [];
  async send(_topic: string, records: LogRecord[]): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setTimeout(r, 5));
    this.inFlight--;
    const f = this.failures.shift();
    if (f) throw f;
    this.delivered.push(...records.map((r) => r.value.toString()));
  }
  async close(): Promise<void> {}
}

const opts = { topic: 't', high_water_bytes: 1 << 20, low_water_bytes: 1 << 19, retry_backoff_ms: 10 };

test('one send in flight: a batch retried after a transient error is not overtaken by later ones', async () => {
  const p = new FlakyProducer();
  p.failures.push(new LogError('LOG_ERR_X', 'transient', true), new LogError('LOG_ERR_X', 'transient', true));
  const sink = new EventSink(p, opts);
  const sent: string[] = [];
  for (let tick = 0; tick < 20; tick++) {
    for (let i = 0; i < 5; i++) {
      const v = `${tick}-${i}`;
      sent.push(v);
      sink.append('s', Buffer.from(v));
    }
    await new Promise((r) => setImmediate(r));
  }
  await sink.drain();
  assert.deepEqual(p.delivered, sent);
  assert.equal(p.maxInFlight, 1);
  assert.equal(sink.pendingBytes, 0);
  assert.equal(sink.failure, undefined);
});

test('a non-retriable failure latches, counts the lost records once, releases their bytes and emits once', async () => {
  const p = new FlakyProducer();
  p.failures.push(new LogError('LOG_ERR_IO', 'disk gone', false));
  const sink = new EventSink(p, { ...opts, high_water_bytes: 10, low_water_bytes: 5 });
  let failures = 0;
  const pressure: boolean[] = [];
  sink.on('failure', () => failures++);
  sink.on('pressure', (on) => pressure.push(on));
  for (let i = 0; i < 4; i++) sink.append('s', Buffer.from('0123456789'));
  await sink.drain();
  assert.equal(sink.stats.lost_records, 4);
  assert.equal(sink.pendingBytes, 0);
  assert.deepEqual(pressure, [true, false], 'pressure released after the failed batch');
  sink.append('s', Buffer.from('after'));
  await sink.drain();
  assert.deepEqual(p.delivered, ['after'], 'later records are still attempted');
  assert.equal(failures, 1);
  assert.equal((sink.failure as LogError).code, 'LOG_ERR_IO');
});

test('an EventSink gives its slabs back once a batch is sent: frames after many batches are still exact', async () => {
  const kept: Buffer[] = [];
  const producer = {
    async send(_t: string, records: { value: Buffer }[]) {
      await new Promise((r) => setImmediate(r));
      for (const r of records) kept.push(Buffer.from(r.value));
    },
    async close() {},
  };
  const sink = new EventSink(producer, { topic: 't', high_water_bytes: 1 << 30, low_water_bytes: 1 << 29, retry_backoff_ms: 1 });
  const w = sink.openChain('s', { gateway_id: 'g', gateway_version: 'v' });
  const buffers = new Set<ArrayBufferLike>();
  const original = sink.slabs.seal.bind(sink.slabs);
  sink.slabs.seal = (...args: Parameters<typeof original>) => {
    const b = original(...args);
    buffers.add(b.buffer);
    return b;
  };
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 100; i++) w.frame('c2s', 'Q', Buffer.alloc(2000, (round * 100 + i) & 0xff), 1 + round * 100 + i);
    await sink.drain();
  }
  assert.equal(kept.length, 4000);
  const report = verifyChain(kept);
  assert.equal(report.ok, true, report.problem);
  kept.forEach((b, n) => assert.ok(Buffer.from((decode(b) as Extract<ChainedEvent, { type: 'frame' }>).data).equals(Buffer.alloc(2000, n & 0xff))));
  // 8 MB of frames went through a handful of slabs.
  assert.ok(buffers.size <= 6, `slabs used: ${buffers.size}`);
});
