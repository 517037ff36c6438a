import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogError, type LogRecord, type Producer } from '../types.ts';
import { SpoolingProducer } from './producer.ts';
import { tempDir, waitFor } from '../local/testutil.ts';

/** In-memory primary (stands in for Kafka): can be switched down (retriable) or to reject for good. */
class FakePrimary implements Producer {
  down = false;
  fatal = false;
  readonly received: Array<{ topic: string; key: string; value: string; headers?: Record<string, string> }> = [];
  calls = 0;
  async send(topic: string, records: LogRecord[]): Promise<void> {
    this.calls++;
    await new Promise((r) => setImmediate(r)); // a broker round trip, so sends overlap
    if (this.down) throw new LogError('KAFKA_ERR_UNAVAILABLE', 'broker unreachable', true);
    if (this.fatal) throw new LogError('KAFKA_ERR_MESSAGE_TOO_LARGE', 'rejected', false);
    for (const r of records) {
      this.received.push({ topic, key: r.key, value: r.value.toString(), ...(r.headers ? { headers: r.headers } : {}) });
    }
  }
  async close(): Promise<void> {}
}

/** Per key, the values in arrival order must be the sent sequence: no loss, no reordering, no dupes. */
function assertPerKeyOrder(received: FakePrimary['received'], keys: number, perKey: number, topic = 'frames'): void {
  for (let k = 0; k < keys; k++) {
    const values = received.filter((r) => r.topic === topic && r.key === `s${k}`).map((r) => r.value);
    assert.deepEqual(values, [...Array(perKey).keys()].map((i) => `s${k}-${i}`), `key s${k}`);
  }
}

test('primary down: sends are spooled, then drained to the primary in order; afterwards traffic goes direct', async (t) => {
  const dir = await tempDir(t);
  const primary = new FakePrimary();
  const sp = await SpoolingProducer.open(primary, { dir }, { retryBackoffMs: 20 });
  t.after(() => sp.close());
  const KEYS = 5;
  let seq = 0;
  const sendRound = (n: number) => {
    const ps: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < KEYS; k++) {
        ps.push(sp.send('frames', [{ key: `s${k}`, value: Buffer.from(`s${k}-${seq}`), headers: { type: 'frame' } }]));
      }
      seq++;
    }
    return Promise.all(ps);
  };
  await sendRound(10);
  assert.equal(sp.currentMode, 'direct');
  assert.equal(primary.received.length, 50);

  primary.down = true;
  await sendRound(40); // all resolve although the primary is down: they are durable in the spool
  assert.equal(sp.currentMode, 'spooling');
  assert.equal(primary.received.length, 50);
  assert.equal(sp.stats.spooled, 200);
  await new Promise((r) => setTimeout(r, 100)); // forwarder retries against the dead primary meanwhile
  assert.equal(primary.received.length, 50);

  primary.down = false;
  await waitFor(() => sp.backlog === 0, `spool drained (backlog ${sp.backlog})`);
  assert.equal(primary.received.length, 250);
  assertPerKeyOrder(primary.received, KEYS, 50);
  assert.ok(primary.received.every((r) => r.headers?.type === 'frame' && !('vigil.spool.topic' in r.headers)));

  await sendRound(5);
  assert.equal(sp.currentMode, 'direct', 'back to direct once drained');
  assert.equal(sp.stats.spooled, 200, 'nothing more spooled');
  assert.equal(primary.received.length, 275);
  assertPerKeyOrder(primary.received, KEYS, 55);
});

test('sends made while the spool drains still queue behind it (no overtaking)', async (t) => {
  const dir = await tempDir(t);
  const primary = new FakePrimary();
  const sp = await SpoolingProducer.open(primary, { dir }, { retryBackoffMs: 10, forwardBatchRecords: 7 });
  t.after(() => sp.close());
  primary.down = true;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) sends.push(sp.send('frames', [{ key: 's0', value: Buffer.from(`s0-${i}`) }]));
  await Promise.all(sends.slice(0, 50));
  primary.down = false; // comes back while the rest are still being sent
  await Promise.all(sends);
  for (let i = 100; i < 150; i++) await sp.send('frames', [{ key: 's0', value: Buffer.from(`s0-${i}`) }]);
  await waitFor(() => primary.received.length >= 150, 'all records at the primary');
  assertPerKeyOrder(primary.received, 1, 150);
});

test('restart mid-outage: reopening the spool dir drains what the previous process spooled', async (t) => {
  const dir = await tempDir(t);
  const primary = new FakePrimary();
  primary.down = true;
  const sp1 = await SpoolingProducer.open(primary, { dir }, { retryBackoffMs: 10 });
  await Promise.all(
    [...Array(60).keys()].map((i) => sp1.send(i % 2 ? 'frames' : 'sessions', [{ key: `s${i % 3}`, value: Buffer.from(`v${i}`) }])),
  );
  assert.equal(sp1.backlog, 60);
  await sp1.close(); // "crash": the primary never saw any of it
  assert.equal(primary.received.length, 0);

  primary.down = false;
  const sp2 = await SpoolingProducer.open(primary, { dir }, { retryBackoffMs: 10 });
  t.after(() => sp2.close());
  assert.equal(sp2.currentMode, 'spooling', 'starts behind its backlog');
  await waitFor(() => primary.received.length === 60, 'drain after restart');
  assert.equal(sp2.backlog, 0);
  const expected = [...Array(60).keys()].map((i) => ({ topic: i % 2 ? 'frames' : 'sessions', key: `s${i % 3}`, value: `v${i}` }));
  for (const topic of ['frames', 'sessions']) {
    for (const key of ['s0', 's1', 's2']) {
      assert.deepEqual(
        primary.received.filter((r) => r.topic === topic && r.key === key).map((r) => r.value),
        expected.filter((r) => r.topic === topic && r.key === key).map((r) => r.value),
      );
    }
  }
  // A new send after the drain goes straight through.
  await sp2.send('frames', [{ key: 's0', value: Buffer.from('after') }]);
  assert.equal(sp2.currentMode, 'direct');
  assert.equal(primary.received.at(-1)!.value, 'after');
});

test('non-retriable primary errors propagate and are not spooled; other merged calls still succeed', async (t) => {
  const dir = await tempDir(t);
  const primary = new FakePrimary();
  const bad = new FakePrimary();
  const sp = await SpoolingProducer.open(
    {
      send: (topic, records) => (records.some((r) => r.key === 'bad') ? bad.send(topic, records) : primary.send(topic, records)),
      close: async () => {},
    },
    { dir },
  );
  t.after(() => sp.close());
  bad.fatal = true;
  const ok1 = sp.send('frames', [{ key: 'a', value: Buffer.from('1') }]);
  const failing = sp.send('frames', [{ key: 'bad', value: Buffer.from('x') }]);
  const ok2 = sp.send('frames', [{ key: 'a', value: Buffer.from('2') }]);
  await assert.rejects(failing, (e: unknown) => e instanceof LogError && e.code === 'KAFKA_ERR_MESSAGE_TOO_LARGE');
  await Promise.all([ok1, ok2]);
  assert.deepEqual(primary.received.map((r) => r.value), ['1', '2']);
  assert.equal(sp.stats.spooled, 0);
  assert.equal(sp.currentMode, 'direct');
  await assert.rejects(sp.send('frames', [{ key: 'a', value: Buffer.alloc(1), headers: { 'vigil.spool.topic': 'x' } }]), /reserved/);
});
