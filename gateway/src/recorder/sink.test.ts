import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogRecord, Producer } from '@vigil/eventlog/types';
import { LogError } from '@vigil/eventlog/types';
import { recordsOf, type RecordRun } from '@vigil/eventlog/run';
import { EventSink } from './sink.ts';
import { decode, verifyChain, SessionChain, type ChainedEvent } from '@vigil/schemas';

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

/** A run-taking producer (like the local log) that reads each run's records back after a loop turn. */
function runProducer() {
  const kept: LogRecord[] = [];
  const buffers = new Set<Buffer>();
  const producer: Producer = {
    async send() {
      throw new Error('the sink must use sendRun when the producer has it');
    },
    async sendRun(_t: string, run: RecordRun) {
      buffers.add(run.buf);
      await new Promise((r) => setImmediate(r));
      for (const r of recordsOf(run)) kept.push({ ...r, value: Buffer.from(r.value) });
    },
    async close() {},
  };
  return { producer, kept, buffers };
}

test('an EventSink seals frames into record runs and reuses them once sent: 8 MB later, every frame is exact', async () => {
  const { producer, kept, buffers } = runProducer();
  const sink = new EventSink(producer, { topic: 't', high_water_bytes: 1 << 30, low_water_bytes: 1 << 29, retry_backoff_ms: 1 });
  const w = sink.openChain('s', { gateway_id: 'g', gateway_version: 'v' });
  const sizeOf = (n: number) => (n % 250 === 0 ? 300_000 : 2000 + (n % 7)); // some frames far past a run's room
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 100; i++) {
      const n = round * 100 + i;
      w.frame('c2s', 'Q', Buffer.alloc(sizeOf(n), n & 0xff), 1 + n);
      if (i === 50) w.event({ type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: round, observed: round + 1 } as never);
    }
    await sink.drain();
  }
  assert.equal(kept.length, 4040);
  assert.ok(kept.every((r) => r.key === 's'));
  const report = verifyChain(kept.map((r) => r.value));
  assert.equal(report.ok, true, report.problem);
  const frames = kept.filter((r) => r.headers === undefined).map((r) => decode(r.value) as Extract<ChainedEvent, { type: 'frame' }>);
  assert.equal(frames.length, 4000);
  frames.forEach((f, n) => assert.ok(Buffer.from(f.data).equals(Buffer.alloc(sizeOf(n), n & 0xff)), `frame ${n}`));
  assert.deepEqual(
    kept.filter((r) => r.headers).map((r) => r.headers),
    Array.from({ length: 40 }, () => ({ type: 'policy.limit' })),
  );
  // 40 sends went through a handful of run buffers.
  assert.ok(buffers.size <= 6, `run buffers used: ${buffers.size}`);
});

test('a producer without sendRun gets the run\'s records: keys, headers and values', async () => {
  const got: LogRecord[] = [];
  const producer: Producer = {
    async send(_t, records) {
      for (const r of records) got.push({ ...r, value: Buffer.from(r.value) });
    },
    async close() {},
  };
  const sink = new EventSink(producer, opts);
  const a = sink.openChain('sess-a', { gateway_id: 'g', gateway_version: 'v' });
  const b = sink.openChain('sess-ü', { gateway_id: 'g', gateway_version: 'v' });
  a.frame('c2s', 'Q', Buffer.from('select 1'), 10);
  b.frame('s2c', undefined, Buffer.from([0, 1, 2]), 11);
  a.event({ type: 'policy.limit', version: 1, rule_id: 'r', limit: 'max_rows', value: 1, observed: 2 } as never);
  await sink.drain();
  assert.deepEqual(got.map((r) => r.key), ['sess-a', 'sess-ü', 'sess-a']);
  assert.deepEqual(got.map((r) => r.headers), [undefined, undefined, { type: 'policy.limit' }]);
  assert.deepEqual(Buffer.from((decode(got[1]!.value) as Extract<ChainedEvent, { type: 'frame' }>).data), Buffer.from([0, 1, 2]));
  assert.equal(verifyChain([got[0]!.value, got[2]!.value]).ok, true);
});

test('a frame that cannot be sealed throws on its own: the records around it are sent, the chain has no gap', async () => {
  const { producer, kept } = runProducer();
  const sink = new EventSink(producer, opts);
  const chain = new SessionChain('s', { gateway_id: 'g', gateway_version: 'v' });
  assert.equal(chain.native, true, 'this test is about in-place sealing');
  const key = Buffer.from('s');
  sink.appendFrame('s', key, chain, 'c2s', 'Q', Buffer.from('before'), 1);
  assert.throws(() => sink.appendFrame('s', key, chain, 'c2s', 'Q', Buffer.from('bad time'), 1.5), TypeError);
  sink.appendFrame('s', key, chain, 's2c', 'Z', Buffer.alloc(5000, 2), 2); // grows the run past its room
  await sink.drain();
  assert.equal(sink.failure, undefined);
  assert.equal(kept.length, 2);
  assert.equal(verifyChain(kept.map((r) => r.value)).ok, true);
  assert.deepEqual(kept.map((r) => (decode(r.value) as ChainedEvent).seq), [0, 1]);
});

test('JS-sealed chains (no native sealer) go through the same sink and read back the same way', async () => {
  const { producer, kept } = runProducer();
  const sink = new EventSink(producer, opts);
  const chain = new SessionChain('s', { gateway_id: 'g', gateway_version: 'v' }, { sealer: 'js' });
  for (let i = 0; i < 20; i++) sink.appendFrame('s', Buffer.from('s'), chain, i % 2 ? 's2c' : 'c2s', 'D', Buffer.alloc(i * 100, i), 10 + i);
  await sink.drain();
  assert.equal(verifyChain(kept.map((r) => r.value)).ok, true);
  kept.forEach((r, i) => assert.ok(Buffer.from((decode(r.value) as Extract<ChainedEvent, { type: 'frame' }>).data).equals(Buffer.alloc(i * 100, i))));
});

test('a run re-sent after a retriable error is intact, and nothing overtakes it', async () => {
  const { producer, kept } = runProducer();
  const sendRun = producer.sendRun!.bind(producer);
  let failures = 2;
  producer.sendRun = async (t, run) => {
    if (failures-- > 0) throw new LogError('LOG_ERR_X', 'transient', true);
    return sendRun(t, run);
  };
  const sink = new EventSink(producer, opts);
  const w = sink.openChain('s', { gateway_id: 'g', gateway_version: 'v' });
  for (let i = 0; i < 50; i++) w.frame('c2s', 'Q', Buffer.from(`q${i}`), 1 + i);
  await new Promise((r) => setTimeout(r, 5)); // the first send is failing and being retried
  for (let i = 50; i < 100; i++) w.frame('c2s', 'Q', Buffer.from(`q${i}`), 1 + i);
  await sink.drain();
  assert.equal(sink.stats.send_errors, 2);
  assert.equal(verifyChain(kept.map((r) => r.value)).ok, true);
  assert.deepEqual(
    kept.map((r) => Buffer.from((decode(r.value) as Extract<ChainedEvent, { type: 'frame' }>).data).toString()),
    Array.from({ length: 100 }, (_, i) => `q${i}`),
  );
});
