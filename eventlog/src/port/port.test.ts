/**
 * The thread bridge over a real local log: batches cross a MessageChannel with their bytes intact,
 * offsets are committed only after the far side acknowledged, a rejected batch comes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { LocalEventLog } from '../local/index.ts';
import { tempDir } from '../local/testutil.ts';
import { serveEventLog, PortEventLog } from './index.ts';

test('batches cross the port intact; commit only after ack; a rejection redelivers', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  await log.ensureTopics(['t']);
  const values = Array.from({ length: 50 }, (_, i) => randomBytes(10 + i));
  await log.producer().send('t', values.map((value, i) => ({ key: `k${i % 3}`, value, headers: { n: String(i) } })));

  const { port1, port2 } = new MessageChannel();
  const served = serveEventLog(log, port1);
  const remote = new PortEventLog(port2);
  const seen: Buffer[] = [];
  let failedOnce = false;
  const consumer = remote.consumer({ groupId: 'g', topics: ['t'], maxBatchRecords: 20 });
  const done = new Promise<void>((resolve) => {
    void consumer.run(async (batch) => {
      if (!failedOnce && seen.length >= 20) {
        failedOnce = true;
        throw Object.assign(new Error('transient'), { retriable: true });
      }
      assert.ok(batch.records.length <= 20);
      // While this handler runs, the owner has committed nothing past what was acknowledged before.
      const committed = await log.committedOffset('g', 't');
      assert.equal(Number(committed ?? 0), seen.length, 'no commit ahead of the acknowledgement');
      for (const r of batch.records) {
        assert.equal(r.headers?.n, String(seen.length));
        seen.push(Buffer.from(r.value));
      }
      if (seen.length === values.length) resolve();
    });
  });
  await done;
  assert.ok(failedOnce, 'one batch was rejected');
  assert.equal(seen.length, values.length, 'the rejected batch came back, nothing twice');
  seen.forEach((v, i) => assert.ok(v.equals(values[i]!), `record ${i} bytes`));
  await consumer.stop();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await log.committedOffset('g', 't'), String(values.length), 'committed through the last acknowledged record');
  await served.close();
  await log.close();
});

test('a worker-side producer appends through the owner: bytes, keys and headers intact, durable when send resolves; closed producer refuses', async (t) => {
  const dir = await tempDir(t);
  const log = await LocalEventLog.open({ dir });
  const { port1, port2 } = new MessageChannel();
  const served = serveEventLog(log, port1);
  const remote = new PortEventLog(port2);
  await remote.ensureTopics(['out']);
  const producer = remote.producer();
  const values = Array.from({ length: 30 }, (_, i) => randomBytes(1 + i * 7));
  // Two sends in flight at once, then one after: order per key is kept.
  await Promise.all([
    producer.send('out', values.slice(0, 10).map((value, i) => ({ key: 'a', value, headers: { n: String(i) } }))),
    producer.send('out', values.slice(10, 20).map((value, i) => ({ key: 'a', value, headers: { n: String(10 + i) } }))),
  ]);
  await producer.send('out', values.slice(20).map((value, i) => ({ key: 'b', value })));
  await producer.send('out', []);
  // Resolved sends are in the owner's log: read them back with a consumer of the owner itself.
  const got: { key: string; value: Buffer; n?: string }[] = [];
  const consumer = log.consumer({ groupId: 'read', topics: ['out'] });
  await new Promise<void>((resolve) => {
    void consumer.run(async (batch) => {
      for (const r of batch.records) got.push({ key: r.key, value: Buffer.from(r.value), n: r.headers?.n });
      if (got.length === values.length) resolve();
    });
  });
  await consumer.stop();
  assert.equal(got.length, values.length);
  const a = got.filter((r) => r.key === 'a');
  assert.deepEqual(a.map((r) => r.n), Array.from({ length: 20 }, (_, i) => String(i)), 'key a in send order');
  for (const r of a) assert.ok(r.value.equals(values[Number(r.n)]!));
  assert.deepEqual(got.filter((r) => r.key === 'b').map((r) => r.value.toString('hex')), values.slice(20).map((v) => v.toString('hex')));
  await producer.close();
  await assert.rejects(producer.send('out', [{ key: 'a', value: Buffer.from('x') }]), (err: { code?: string }) => err.code === 'LOG_ERR_PORT_USAGE');
  await served.close();
  await log.close();
});

test('the owner going away: waiting and later calls fail at once (retriable), consumers count as stopped', async () => {
  const { port1, port2 } = new MessageChannel();
  const remote = new PortEventLog(port2);
  // Nobody serves port1: this send waits for an answer that will never come…
  const waiting = remote.producer().send('t', [{ key: 'k', value: Buffer.from('v') }]);
  const consumer = remote.consumer({ groupId: 'g', topics: ['t'] });
  const running = consumer.run(async () => {});
  port1.close(); // …until the owning side is gone
  await assert.rejects(waiting, (e: Error & { code?: string; retriable?: boolean }) => e.code === 'LOG_ERR_PORT_CLOSED' && e.retriable === true);
  await assert.rejects(running, /went away/);
  await consumer.stop(); // resolves, does not hang
  await assert.rejects(remote.ensureTopics(['t']), /went away/);
  await assert.rejects(remote.producer().send('t', [{ key: 'k', value: Buffer.from('v') }]), /went away/);
});
